"""``adapters.customer_sync`` in memory: stage, check the file against itself, plan, apply.

Statement by statement the SQL twin's: rejects are later rows repeating a (customer, subscription)
key and rows whose customer details differ from the customer's first row; the plan classifies every
staged row against the stored rows; applying writes only rows that change and, on a full sync,
removes what the file lacks and skips its pending reminders ('removed'). Kept rows (recognised by
their source digest) are staged again from the stored rows when they share a customer with a staged
row, and otherwise count as unchanged and present, as unchanged digests do.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from decimal import ROUND_HALF_UP, Decimal

from tenant_worker.domain.records import CustomerRecord, ImportChunk, ImportCounts, ImportPlan, ImportRow, KeptRow
from tests.fakes.tables import CustomerRow, FakeSession, SubscriptionRow, Tables, check_reminder

_CENTS = Decimal("0.01")


def import_rows(
    session: FakeSession,
    tenant_id: int,
    chunks: Iterable[ImportChunk],
    *,
    full_sync: bool,
    approve: Callable[[ImportPlan], bool],
) -> tuple[ImportPlan, bool]:
    """``Catalog.import_rows`` on the fake tables."""
    staged: list[ImportRow] = []
    digests: dict[int, int] = {}
    kept: list[KeptRow] = []
    unchanged: list[int] = []
    for chunk in chunks:
        for index, (line, r) in enumerate(chunk.rows):
            staged.append((line, dataclasses.replace(r, amount=r.amount.quantize(_CENTS, rounding=ROUND_HALF_UP))))
            if chunk.digests:
                digests[line] = chunk.digests[index]
        kept += chunk.kept
        unchanged += chunk.unchanged
    tables = session.tables
    kept = _materialize(tables, tenant_id, staged, digests, kept)
    rejects = _rejects(staged)
    rejected = {line for line, _ in rejects}
    staged = [(line, r) for line, r in staged if line not in rejected]
    present = {d for _, d in kept} | set(unchanged)
    plan = _plan(tables, tenant_id, staged, present, len(kept) + len(unchanged), full_sync, rejects)
    applied = approve(plan)
    if applied:
        _apply(session, tenant_id, staged, digests, present, full_sync)
    return plan, applied


def state_of(c: CustomerRow, s: SubscriptionRow) -> tuple[object, ...]:
    """What an import wrote to a customer and subscription (``import_state``)."""
    return (c.name, c.phone, c.opted_out, c.locale, s.plan, s.amount, s.currency, s.expires_on, s.status)


def unchanged_digests(tables: Tables, tenant_id: int) -> set[int]:
    """``Catalog.unchanged_digests`` on the fake tables."""
    found = set()
    for s in tables.subscriptions.values():
        c = tables.customers.get(s.customer_id)
        if (
            s.tenant_id == tenant_id
            and s.import_digest is not None
            and c is not None
            and (s.removed_at, c.removed_at) == (None, None)
            and s.import_state == state_of(c, s)
        ):
            found.add(s.import_digest)
    return found


def _materialize(
    tables: Tables, tenant_id: int, staged: list[ImportRow], digests: dict[int, int], kept: list[KeptRow]
) -> list[KeptRow]:
    """Stage again the kept rows of a staged customer; returns the others."""
    by_digest = {
        s.import_digest: s for s in tables.subscriptions.values() if s.tenant_id == tenant_id and s.import_digest
    }
    refs = {r.external_ref for _, r in staged}
    rest = []
    for line, digest in kept:
        s = by_digest.get(digest)
        c = None if s is None else tables.customers[s.customer_id]
        if s is None or c is None or c.external_ref not in refs:
            rest.append((line, digest))
            continue
        record = CustomerRecord(
            c.external_ref,
            c.name,
            c.phone or "",
            s.plan,
            s.amount,
            s.currency,
            s.expires_on,
            c.opted_out,
            s.status,
            s.external_ref,
            c.locale,
        )
        staged.append((line, record))
        digests[line] = digest
    return rest


def merge_rejects(rejects: Iterable[tuple[int, str]]) -> list[tuple[int, str]]:
    """One (line, reasons) per line, in line order, reasons joined with "; "."""
    merged: dict[int, list[str]] = {}
    for line, reason in sorted(rejects, key=lambda r: r[0]):
        merged.setdefault(line, []).append(reason)
    return [(line, "; ".join(reasons)) for line, reasons in merged.items()]


def _label(customer_ref: str, subscription_ref: str | None) -> str:
    return customer_ref + ("" if subscription_ref is None else f"/{subscription_ref}")


def _details(r: CustomerRecord) -> tuple[object, ...]:
    return (r.name, r.phone, r.opted_out, r.locale)


def _rejects(staged: list[ImportRow]) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    first_key: dict[tuple[str, str | None], int] = {}
    first_customer: dict[str, tuple[int, CustomerRecord]] = {}
    for line, r in sorted(staged, key=lambda row: row[0]):
        key = (r.external_ref, r.subscription_ref)
        if key in first_key:
            found.append((line, f"external_ref {_label(*key)!r} repeats line {first_key[key]}"))
        else:
            first_key[key] = line
        first = first_customer.setdefault(r.external_ref, (line, r))
        if _details(first[1]) != _details(r):
            found.append(
                (line, f"customer {r.external_ref!r}: name, phone, opted_out or locale differ from line {first[0]}")
            )
    return merge_rejects(found)


def _stored(
    tables: Tables, tenant_id: int
) -> tuple[dict[str, CustomerRow], dict[tuple[int, str | None], SubscriptionRow]]:
    customers = {c.external_ref: c for c in tables.customers.values() if c.tenant_id == tenant_id}
    subscriptions = {
        (s.customer_id, s.external_ref): s for s in tables.subscriptions.values() if s.tenant_id == tenant_id
    }
    return customers, subscriptions


def _customer_changed(c: CustomerRow, r: CustomerRecord) -> bool:
    return (c.name, c.phone, c.opted_out, c.locale, c.removed_at is None) != (
        r.name,
        r.phone,
        r.opted_out,
        r.locale,
        True,
    )


def _subscription_changed(s: SubscriptionRow, r: CustomerRecord) -> bool:
    return (s.plan, s.amount, s.currency, s.expires_on, s.status, s.removed_at is None) != (
        r.plan,
        r.amount,
        r.currency,
        r.expires_on,
        r.status,
        True,
    )


def _absent(tables: Tables, tenant_id: int, staged: list[ImportRow], present: set[int]) -> list[SubscriptionRow]:
    keys = {(r.external_ref, r.subscription_ref) for _, r in staged}
    return [
        s
        for s in tables.subscriptions.values()
        if s.tenant_id == tenant_id
        and s.removed_at is None
        and (tables.customers[s.customer_id].external_ref, s.external_ref) not in keys
        and s.import_digest not in present
    ]


def _plan(
    tables: Tables,
    tenant_id: int,
    staged: list[ImportRow],
    present: set[int],
    kept: int,
    full_sync: bool,
    rejects: list[tuple[int, str]],
) -> ImportPlan:
    customers, subscriptions = _stored(tables, tenant_id)
    counts = dict.fromkeys(("created", "updated", "renewed", "unchanged", "removed"), 0)
    samples: dict[str, list[str]] = {"created": [], "updated": [], "renewed": [], "removed": []}
    for _line, r in sorted(staged, key=lambda row: row[0]):
        label = _label(r.external_ref, r.subscription_ref)
        c = customers.get(r.external_ref)
        s = None if c is None else subscriptions.get((c.id, r.subscription_ref))
        if c is None or s is None:
            kind = "created"
        elif _customer_changed(c, r) or _subscription_changed(s, r):
            kind = "updated"
        else:
            kind = "unchanged"
        counts[kind] += 1
        names = [kind] if kind != "unchanged" else []
        if s is not None and s.expires_on != r.expires_on:
            counts["renewed"] += 1
            names.append("renewed")
        for name in names:
            if len(samples[name]) < 5:
                samples[name].append(label)
    counts["unchanged"] += kept
    if full_sync:
        absent = _absent(tables, tenant_id, staged, present)
        counts["removed"] = len(absent)
        labels = sorted(_label(tables.customers[s.customer_id].external_ref, s.external_ref) for s in absent)
        samples["removed"] = labels[:5]
    current = (s for s in tables.subscriptions.values() if s.tenant_id == tenant_id and s.removed_at is None)
    active = sum(1 for _ in current) if full_sync else 0
    return ImportPlan(ImportCounts(**counts), samples, rejects, active)


def _apply(
    session: FakeSession,
    tenant_id: int,
    staged: list[ImportRow],
    digests: dict[int, int],
    present: set[int],
    full_sync: bool,
) -> None:
    tables = session.tables
    now = session.transaction_now()
    customers, subscriptions = _stored(tables, tenant_id)
    absent = _absent(tables, tenant_id, staged, present) if full_sync else []
    for line, r in sorted(staged, key=lambda row: row[0]):
        c = customers.get(r.external_ref)
        if c is None:
            c = CustomerRow(next(tables.customer_ids), tenant_id, r.external_ref, r.name, r.phone, r.opted_out)
            c = dataclasses.replace(c, updated_at=now, locale=r.locale)
        elif _customer_changed(c, r):
            c = dataclasses.replace(
                c, name=r.name, phone=r.phone, opted_out=r.opted_out, locale=r.locale, removed_at=None, updated_at=now
            )
        tables.customers[c.id] = customers[r.external_ref] = c
        s = subscriptions.get((c.id, r.subscription_ref))
        values = {
            "plan": r.plan,
            "amount": r.amount,
            "currency": r.currency,
            "expires_on": r.expires_on,
            "status": r.status,
            "removed_at": None,
            "updated_at": now,
        }
        if s is None:
            s = SubscriptionRow(
                next(tables.subscription_ids), tenant_id, c.id, external_ref=r.subscription_ref, **values
            )  # type: ignore[arg-type]
        elif _subscription_changed(s, r):
            s = dataclasses.replace(s, **values)  # type: ignore[arg-type]
        s = dataclasses.replace(s, import_digest=digests.get(line), import_state=state_of(c, s))
        tables.subscriptions[s.id] = subscriptions[(c.id, r.subscription_ref)] = s
    if not full_sync:
        return
    gone = {s.id for s in absent}
    for s in absent:
        tables.subscriptions[s.id] = dataclasses.replace(s, removed_at=now, updated_at=now)
    for row in sorted(tables.reminders.values(), key=lambda row: row.id):
        if row.tenant_id == tenant_id and row.status == "pending" and row.subscription_id in gone:
            tables.reminders[row.id] = check_reminder(
                dataclasses.replace(row, status="skipped", skip_reason="removed", updated_at=now)
            )
    refs = {r.external_ref for _, r in staged}
    refs |= {
        tables.customers[s.customer_id].external_ref
        for s in tables.subscriptions.values()
        if s.tenant_id == tenant_id and s.import_digest in present
    }
    for c in list(tables.customers.values()):
        if c.tenant_id == tenant_id and c.removed_at is None and c.external_ref not in refs:
            tables.customers[c.id] = dataclasses.replace(c, removed_at=now, updated_at=now)
