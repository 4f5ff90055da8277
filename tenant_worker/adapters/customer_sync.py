"""The customer import on PostgreSQL: COPY into a staging table, then a few set-based statements.

Each chunk of rows is streamed with ``COPY ... FROM STDIN`` (psycopg 3) into a temporary table that
lives as long as the transaction, so an import's memory is one chunk whatever the file's size. The
file is then checked against itself (a key repeated, one customer's details differing between rows),
compared with the tenant's rows (counts and samples for the plan), and, once approved, merged with
``INSERT ... ON CONFLICT DO UPDATE ... WHERE (...) IS DISTINCT FROM (...)``: rows that do not change
are not rewritten, so they keep ``updated_at`` and nothing about their reminders moves.

Rows an earlier import wrote and nothing has changed since (``unchanged_digests``) are neither
validated nor merged. *Kept* rows (a line and a source digest; the service sends those that share a
customer with a staged row) go into a second staging table and are copied into the staging table from
the stored rows, so the file is checked against itself exactly as if every row had been staged.
*Unchanged* digests only count, and only a full sync copies them (to know what is present).

A small import (at most :data:`SMALL_IMPORT_ROWS` rows: an HTTP API request) finds each staged row's
customer and subscription by index instead, so it costs its own rows, not the tenant's size: 1,000 rows
into a 200,000-customer tenant went from 580 ms to 45-85 ms.

Subscriptions are keyed by (customer_id, external_ref) through the ``NULLS NOT DISTINCT`` unique index
``subscriptions_customer_ref_key`` (migration 0007): ``ON CONFLICT (customer_id, external_ref)`` infers
it, and a NULL reference conflicts with the customer's NULL one, as it must.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from tenant_worker.adapters import customer_sync_sql as sql
from tenant_worker.domain.records import ImportChunk, ImportCounts, ImportPlan


def unchanged_digests(session: Session, tenant_id: int) -> set[int]:
    """``Catalog.unchanged_digests`` on PostgreSQL: each side read once and hashed (the import's
    settings); a join through the primary key, row by row, would cost seconds on a large tenant."""
    saved = _configure(session, _SETTINGS)
    raw: Any = session.connection().connection.driver_connection
    # psycopg's binary cursor, 10,000 at a time: SQLAlchemy's result took 0.9 s more per 1,000,000
    # digests, and all at once would hold a second copy of them next to the set.
    found: set[int] = set()
    with raw.cursor(binary=True) as cursor:
        cursor.execute(sql.UNCHANGED_DIGESTS, {"tenant_id": tenant_id})
        while part := cursor.fetchmany(10_000):
            found.update(digest for (digest,) in part)
    _configure(session, saved)
    return found


def import_rows(
    session: Session,
    tenant_id: int,
    chunks: Iterable[ImportChunk],
    *,
    full_sync: bool,
    approve: Callable[[ImportPlan], bool],
) -> tuple[ImportPlan, bool]:
    """``Catalog.import_rows`` on PostgreSQL (see the module docs)."""
    params = {"tenant_id": tenant_id}
    session.execute(text(f"DROP TABLE IF EXISTS {sql.STAGING}"))
    session.execute(text(f"DROP TABLE IF EXISTS {sql.KEPT}"))
    session.execute(text(f"DROP TABLE IF EXISTS {sql.ABSENT}"))
    session.execute(text(sql.CREATE))
    session.execute(text(sql.CREATE_KEPT))
    staged, given, unchanged = _copy(session, chunks)
    unchanged_count = sum(map(len, unchanged))
    saved = _configure(session, _SETTINGS)
    kept = given  # those the stored rows were not found for stay kept (unchanged)
    if given:
        session.execute(text(f"ANALYZE {sql.KEPT}"))
        session.execute(text(f"ANALYZE {sql.STAGING}"))
        hashed = _configure(session, _SMALL_SETTINGS)  # index probes: see sql.MATERIALIZE
        materialized = session.execute(text(sql.MATERIALIZE), params)
        kept -= int(getattr(materialized, "rowcount", 0))
        _configure(session, hashed)
    if full_sync and unchanged_count:
        _copy_digests(session, unchanged)  # present: what a full sync removes is absent from both tables
    # By the rows read, not the rows staged: after a bulk load the tenant's statistics can be stale, and
    # the per-row probes of a small import then turn into scans per row (2,000 changed rows of a
    # 100,000-row re-import took 4.9 s instead of 0.2 s so). Decided after the kept rows were matched.
    small = staged + given + unchanged_count <= SMALL_IMPORT_ROWS
    if small:
        _configure(session, _SMALL_SETTINGS)
    session.execute(text(f"ANALYZE {sql.STAGING}"))
    rejects = _merged([_reject(row) for row in session.execute(text(sql.REJECTS))])
    if rejects:
        session.execute(text(f"DELETE FROM {sql.STAGING} WHERE line = ANY(:lines)"), {"lines": [r[0] for r in rejects]})
    plan = _plan(session, params, full_sync, rejects, small, kept + unchanged_count)
    applied = approve(plan)
    if applied:
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended('tenant-sweep:' || :tenant_id, 0))"), params
        )
        session.execute(text(sql.MERGE_CUSTOMERS.format(probe=sql.PROBE[small])), params)
        merge = sql.MERGE_SUBSCRIPTIONS.format(
            customers=sql.JOIN_CUSTOMERS[small], subscription=sql.LEFT_JOIN_SUBSCRIPTION[small].format(alias="old")
        )
        session.execute(text(merge), params)
        if full_sync:
            session.execute(text(sql.REMOVE), params)
            session.execute(text(sql.REMOVE_CUSTOMERS), params)
    session.execute(text(f"DROP TABLE {sql.STAGING}"))
    session.execute(text(f"DROP TABLE {sql.KEPT}"))
    session.execute(text(f"DROP TABLE IF EXISTS {sql.ABSENT}"))
    _configure(session, saved)
    return plan, applied


# For this transaction only (restored after). Every statement here joins whole sets: right after a bulk
# load the statistics of customers and subscriptions can claim one row, and a nested loop over 1,000,000
# would be quadratic. Sorts and hashes of a large file spill to disk at the default 4 MB: 64 MB took a
# 100,000-row merge from 5.1 to 3.3 s and a re-import's from 2.2 to 1.3 s.
_SETTINGS = {"enable_nestloop": "off", "work_mem": "64MB"}
# An import of at most this many rows (an HTTP API request: 1,000) keeps nested loops: each staged row
# is then an index probe into the tenant's customers and subscriptions, so a request costs its own rows
# and not the tenant's size (hash joins read every row of the tenant: 580 ms per 1,000-row request on
# a 200,000-customer tenant). Its joins are outer joins from the staging table, which a nested loop can
# only drive from the staging side, and its one inner join probes per row (``sql.PROBE``).
SMALL_IMPORT_ROWS = 10_000
_SMALL_SETTINGS = {"enable_nestloop": "on"}


def _configure(session: Session, settings: dict[str, str]) -> dict[str, str]:
    """Set ``settings`` for the transaction; returns their previous values."""
    previous = {}
    for name, value in settings.items():
        previous[name] = session.execute(text("SELECT current_setting(:name)"), {"name": name}).scalar_one()
        session.execute(text("SELECT set_config(:name, :value, true)"), {"name": name, "value": value})
    return previous


def _copy(session: Session, chunks: Iterable[ImportChunk]) -> tuple[int, int, list[Sequence[int]]]:
    """Stream every chunk's staged and kept rows into the staging tables with COPY, in the session's
    transaction; how many rows were staged and kept, and each chunk's unchanged digests (as given: only
    a full sync reads them)."""
    raw: Any = session.connection().connection.driver_connection
    staged = kept = 0
    unchanged: list[Sequence[int]] = []
    with raw.cursor() as cursor:
        for chunk in chunks:
            staged += len(chunk.rows)
            digests: Sequence[int | None] = chunk.digests or [None] * len(chunk.rows)
            with cursor.copy(f"COPY {sql.STAGING} ({', '.join(sql.COLUMNS)}) FROM STDIN") as copy:
                for (line, r), digest in zip(chunk.rows, digests, strict=True):
                    copy.write_row(
                        (
                            line,
                            r.external_ref,
                            r.name,
                            r.phone,
                            r.opted_out,
                            r.locale,
                            r.subscription_ref,
                            r.plan,
                            r.amount,
                            r.currency,
                            r.expires_on,
                            r.status,
                            digest,
                        )
                    )
            if chunk.kept:
                kept += len(chunk.kept)
                with cursor.copy(f"COPY {sql.KEPT} (line, digest) FROM STDIN") as copy:
                    copy.write("".join(f"{line}\t{digest}\n" for line, digest in chunk.kept))
            if chunk.unchanged:
                unchanged.append(chunk.unchanged)
    return staged, kept, unchanged


def _copy_digests(session: Session, parts: Iterable[Sequence[int]]) -> None:
    """COPY the digests into the kept table (no line), 100,000 at a time, one text block each: a
    ``write_row`` per digest was most of the cost (two integers a row took 0.5 s per 1,000,000)."""
    raw: Any = session.connection().connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(f"COPY {sql.KEPT} (digest) FROM STDIN") as copy:
        for digests in parts:
            for start in range(0, len(digests), 100_000):
                copy.write("".join(f"{digest}\n" for digest in digests[start : start + 100_000]))


def _merged(rejects: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """One (line, reasons) per line, in line order, reasons joined with "; "."""
    merged: dict[int, list[str]] = {}
    for line, reason in rejects:
        merged.setdefault(line, []).append(reason)
    return [(line, "; ".join(reasons)) for line, reasons in merged.items()]


def _reject(row: Any) -> tuple[int, str]:
    key = row.customer_ref + ("" if row.subscription_ref is None else f"/{row.subscription_ref}")
    if row.duplicate:
        return int(row.line), f"external_ref {key!r} repeats line {row.first_line}"
    return int(
        row.line
    ), f"customer {row.customer_ref!r}: name, phone, opted_out or locale differ from line {row.first_line}"


def _plan(
    session: Session,
    params: dict[str, int],
    full_sync: bool,
    rejects: list[tuple[int, str]],
    small: bool,
    unchanged: int,
) -> ImportPlan:
    """The plan of the staged rows, with ``unchanged`` rows more (kept and not staged)."""
    counts = dict.fromkeys(("created", "updated", "renewed", "unchanged", "removed"), 0)
    firsts: dict[str, list[tuple[int, str]]] = {"created": [], "updated": [], "renewed": []}
    plan = sql.PLAN.format(
        customers=sql.LEFT_JOIN_CUSTOMERS[small], subscription=sql.LEFT_JOIN_SUBSCRIPTION[small].format(alias="sub")
    )
    for kind, renewed, n, lines, labels in session.execute(text(plan), params):
        counts[kind] += n
        for name in (kind, "renewed") if renewed else (kind,):
            if name != "unchanged":
                firsts[name] += zip(lines, labels, strict=True)
        if renewed:
            counts["renewed"] += n
    counts["unchanged"] += unchanged
    samples = {name: [label for _, label in sorted(pairs)[:5]] for name, pairs in firsts.items()}
    samples["removed"] = []
    if full_sync:
        first_five = '(array_agg(label ORDER BY label COLLATE "C"))[1:5]'
        session.execute(text(sql.CREATE_ABSENT), params)
        query = f"SELECT count(*), {first_five} FROM {sql.ABSENT}"
        removed, labels = session.execute(text(query), params).one()
        counts["removed"], samples["removed"] = int(removed), list(labels or [])
    active = int(session.execute(text(sql.ACTIVE), params).scalar_one()) if full_sync else 0
    return ImportPlan(ImportCounts(**counts), samples, rejects, active)
