"""The customer import on PostgreSQL: COPY into a staging table, then a few set-based statements.

Each chunk of rows is streamed with ``COPY ... FROM STDIN`` (psycopg 3) into a temporary table that
lives as long as the transaction, so an import's memory is one chunk whatever the file's size. The
file is then checked against itself (a key repeated, one customer's details differing between rows),
compared with the tenant's rows (counts and samples for the plan), and, once approved, merged with
``INSERT ... ON CONFLICT DO UPDATE ... WHERE (...) IS DISTINCT FROM (...)``: rows that do not change
are not rewritten, so they keep ``updated_at`` and nothing about their reminders moves.

Rows an earlier import wrote and nothing has changed since (``unchanged_digests``) arrive as *kept*
rows, a line and a source digest, into a second staging table: they are neither validated nor
merged. The ones that share a customer with a staged row, or repeat, are copied into the staging
table from the stored rows first, so the file is checked against itself exactly as if every row had
been staged; the rest count as unchanged, and as present for a full sync.

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

from tenant_worker.domain.records import ImportChunk, ImportCounts, ImportPlan

_STAGING = "customer_import_staging"
_KEPT = "customer_import_kept"
_COLUMNS = (
    "line",
    "customer_ref",
    "name",
    "phone",
    "opted_out",
    "locale",
    "subscription_ref",
    "plan",
    "amount",
    "currency",
    "expires_on",
    "status",
    "digest",
)

_CREATE = f"""
    CREATE TEMP TABLE {_STAGING} (
        line bigint NOT NULL, customer_ref text NOT NULL, name text NOT NULL, phone text,
        opted_out boolean NOT NULL, locale text, subscription_ref text, plan text NOT NULL,
        amount numeric(12, 2) NOT NULL, currency text NOT NULL, expires_on date NOT NULL, status text NOT NULL,
        digest bigint
    ) ON COMMIT DROP
"""
_CREATE_KEPT = f"CREATE TEMP TABLE {_KEPT} (line bigint NOT NULL, digest bigint NOT NULL) ON COMMIT DROP"

# What a row's subscription state hashes to: computed over a staged row when it is merged and over the
# stored columns by ``unchanged_digests``; both sides have the same types, so the same text.
_STATE = (
    "hashtextextended(ROW({0}name, {0}phone, {0}opted_out, {0}locale,"
    " {1}plan, {1}amount, {1}currency, {1}expires_on, {1}status)::text, 0)"
)

UNCHANGED_DIGESTS = f"""
    SELECT sub.import_digest FROM subscriptions sub
      JOIN customers c ON c.tenant_id = sub.tenant_id AND c.id = sub.customer_id
     WHERE sub.tenant_id = :tenant_id AND sub.import_digest IS NOT NULL
       AND sub.removed_at IS NULL AND c.removed_at IS NULL
       AND sub.import_state = {_STATE.format("c.", "sub.")}
"""

# Kept rows that must be checked with the staged ones: those of a customer the file also stages, and
# those repeated. They are staged again from the stored rows they name, and leave the kept table. Both
# parts start from the few rows concerned and reach the others through indexes (hence nested loops,
# which the import otherwise turns off): a 1% re-import of 1,000,000 rows must not join them all.
_MATERIALIZE = f"""
    WITH concerned AS (
        SELECT k.line, k.digest, sub.id AS subscription_id
          FROM (SELECT DISTINCT customer_ref FROM {_STAGING}) t
          JOIN customers c ON c.tenant_id = :tenant_id AND c.external_ref = t.customer_ref
          JOIN subscriptions sub ON sub.tenant_id = :tenant_id AND sub.customer_id = c.id
          JOIN {_KEPT} k ON k.digest = sub.import_digest
        UNION
        SELECT k.line, k.digest, sub.id
          FROM (SELECT digest FROM {_KEPT} GROUP BY digest HAVING count(*) > 1) r
          JOIN {_KEPT} k ON k.digest = r.digest
          JOIN subscriptions sub ON sub.tenant_id = :tenant_id AND sub.import_digest = r.digest),
    taken AS (
        INSERT INTO {_STAGING} ({", ".join(_COLUMNS)})
        SELECT k.line, c.external_ref, c.name, c.phone, c.opted_out, c.locale, sub.external_ref, sub.plan, sub.amount,
               sub.currency, sub.expires_on, sub.status, k.digest
          FROM concerned k
          JOIN subscriptions sub ON sub.tenant_id = :tenant_id AND sub.id = k.subscription_id
          JOIN customers c ON c.tenant_id = :tenant_id AND c.id = sub.customer_id
        RETURNING line)
    DELETE FROM {_KEPT} WHERE line IN (SELECT line FROM taken)
"""

# Later rows repeating a (customer, subscription) key, and rows whose customer details differ from
# the customer's first row: the file contradicts itself there, so those rows are rejected.
_REJECTS = f"""
    SELECT line, customer_ref, subscription_ref, first_line, duplicate FROM (
        SELECT line, customer_ref, subscription_ref,
               min(line) OVER (PARTITION BY customer_ref, subscription_ref) AS first_line,
               true AS duplicate
          FROM {_STAGING}) AS d
     WHERE line <> first_line
    UNION ALL
    SELECT line, customer_ref, subscription_ref, first_line, false FROM (
        SELECT line, customer_ref, subscription_ref,
               (name, phone, opted_out, locale) IS DISTINCT FROM
                   (first_value(name) OVER w, first_value(phone) OVER w, first_value(opted_out) OVER w,
                    first_value(locale) OVER w) AS differs,
               first_value(line) OVER w AS first_line
          FROM {_STAGING}
        WINDOW w AS (PARTITION BY customer_ref ORDER BY line)) AS c
     WHERE differs
     ORDER BY line, duplicate DESC
"""

# How a statement finds each staged row's customer: a join for a file (hashed, with nested loops off),
# or, for a small import, an index probe per staged row. LATERAL with OFFSET 0 is never flattened into
# a join, so the probe stays per row even when the statistics of a freshly loaded tenant make walking
# its customers look cheap (with nested loops on, that walk would be repeated per staged row).
_JOIN_CUSTOMERS = {
    False: "JOIN customers c ON c.tenant_id = :tenant_id AND c.external_ref = s.customer_ref",
    True: """CROSS JOIN LATERAL (SELECT id FROM customers
                                  WHERE tenant_id = :tenant_id AND external_ref = s.customer_ref OFFSET 0) AS c""",
}
_LEFT_JOIN_CUSTOMERS = {
    False: "LEFT JOIN customers c ON c.tenant_id = :tenant_id AND c.external_ref = s.customer_ref",
    True: """LEFT JOIN LATERAL (SELECT id, name, phone, opted_out, locale, removed_at FROM customers
                                 WHERE tenant_id = :tenant_id AND external_ref = s.customer_ref OFFSET 0) AS c
             ON true""",
}

# The same for a NOT EXISTS: with OFFSET 0 it is not turned into a (hashed) anti-join but probed per row.
_PROBE = {False: "", True: "OFFSET 0"}

# Each staged row against the stored customer and subscription it names.
_CLASSIFIED = f"""
    SELECT s.line,
           s.customer_ref || coalesce('/' || s.subscription_ref, '') AS label,
           CASE WHEN sub.id IS NULL THEN 'created'
                WHEN (c.name, c.phone, c.opted_out, c.locale, c.removed_at IS NULL,
                      sub.plan, sub.amount, sub.currency, sub.expires_on, sub.status, sub.removed_at IS NULL)
                     IS DISTINCT FROM
                     (s.name, s.phone, s.opted_out, s.locale, true,
                      s.plan, s.amount, s.currency, s.expires_on, s.status, true) THEN 'updated'
                ELSE 'unchanged' END AS kind,
           sub.id IS NOT NULL AND sub.expires_on <> s.expires_on AS renewed
      FROM {_STAGING} s
      {{customers}}
      LEFT JOIN subscriptions sub ON sub.tenant_id = :tenant_id AND sub.customer_id = c.id
                                 AND sub.external_ref IS NOT DISTINCT FROM s.subscription_ref
"""

_PLAN = f"""
    SELECT kind, renewed, count(*) AS n,
           (array_agg(line ORDER BY line))[1:5] AS lines, (array_agg(label ORDER BY line))[1:5] AS labels
      FROM ({_CLASSIFIED}) AS k
     GROUP BY kind, renewed
"""

# The tenant's subscriptions a full sync removes: not removed yet, and absent from the file.
_ABSENT_SUBSCRIPTIONS = f"""
    SELECT sub.id, c.external_ref || coalesce('/' || sub.external_ref, '') AS label
      FROM subscriptions sub
      JOIN customers c ON c.tenant_id = sub.tenant_id AND c.id = sub.customer_id
     WHERE sub.tenant_id = :tenant_id AND sub.removed_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM {_STAGING} s
                        WHERE s.customer_ref = c.external_ref
                          AND s.subscription_ref IS NOT DISTINCT FROM sub.external_ref)
       AND NOT EXISTS (SELECT 1 FROM {_KEPT} k WHERE k.digest = sub.import_digest)
"""

_ACTIVE = "SELECT count(*) FROM subscriptions WHERE tenant_id = :tenant_id AND removed_at IS NULL"

_MERGE_CUSTOMERS = f"""
    INSERT INTO customers AS c (tenant_id, external_ref, name, phone, opted_out, locale)
    SELECT DISTINCT ON (customer_ref) :tenant_id, customer_ref, name, phone, opted_out, locale
      FROM {_STAGING} s
     WHERE NOT EXISTS (SELECT 1 FROM customers old
                        WHERE old.tenant_id = :tenant_id AND old.external_ref = s.customer_ref
                          AND old.removed_at IS NULL
                          AND (old.name, old.phone, old.opted_out, old.locale)
                              IS NOT DISTINCT FROM (s.name, s.phone, s.opted_out, s.locale)
                       {{probe}})
     ORDER BY customer_ref, line
    ON CONFLICT (tenant_id, external_ref) DO UPDATE
       SET name = EXCLUDED.name, phone = EXCLUDED.phone, opted_out = EXCLUDED.opted_out, locale = EXCLUDED.locale,
           removed_at = NULL, updated_at = now()
     WHERE (c.name, c.phone, c.opted_out, c.locale, c.removed_at IS NULL)
           IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.phone, EXCLUDED.opted_out, EXCLUDED.locale, true)
"""

# A subscription whose values stay the same but whose source digest or state hash is new (the row
# was written differently, or first imported before migration 0011) gets them without a new
# ``updated_at``: its data did not change.
_SUBSCRIPTION_DATA = "{0}plan, {0}amount, {0}currency, {0}expires_on, {0}status, {0}removed_at IS NULL"
_MERGE_SUBSCRIPTIONS = f"""
    INSERT INTO subscriptions AS sub (tenant_id, customer_id, external_ref, plan, amount, currency, expires_on, status,
                                      import_digest, import_state)
    SELECT :tenant_id, c.id, s.subscription_ref, s.plan, s.amount, s.currency, s.expires_on, s.status,
           s.digest, {_STATE.format("s.", "s.")}
      FROM {_STAGING} s
      {{customers}}
      LEFT JOIN subscriptions old ON old.tenant_id = :tenant_id AND old.customer_id = c.id
                                 AND old.external_ref IS NOT DISTINCT FROM s.subscription_ref
     WHERE old.id IS NULL
        OR ({_SUBSCRIPTION_DATA.format("old.")}, old.import_digest, old.import_state)
           IS DISTINCT FROM (s.plan, s.amount, s.currency, s.expires_on, s.status, true,
                             s.digest, {_STATE.format("s.", "s.")})
    ON CONFLICT (customer_id, external_ref) DO UPDATE
       SET plan = EXCLUDED.plan, amount = EXCLUDED.amount, currency = EXCLUDED.currency,
           expires_on = EXCLUDED.expires_on, status = EXCLUDED.status, removed_at = NULL,
           import_digest = EXCLUDED.import_digest, import_state = EXCLUDED.import_state,
           updated_at = CASE WHEN ({_SUBSCRIPTION_DATA.format("sub.")})
                                  IS DISTINCT FROM ({_SUBSCRIPTION_DATA.format("EXCLUDED.")})
                             THEN now() ELSE sub.updated_at END
     WHERE ({_SUBSCRIPTION_DATA.format("sub.")}, sub.import_digest, sub.import_state)
           IS DISTINCT FROM (EXCLUDED.plan, EXCLUDED.amount, EXCLUDED.currency, EXCLUDED.expires_on,
                             EXCLUDED.status, true, EXCLUDED.import_digest, EXCLUDED.import_state)
"""

# Removal waits for the tenant's sweep (its advisory lock), so a sweep cannot claim a reminder for a
# subscription between this statement and the commit; pending reminders are skipped in id order,
# atomically against a send task's pending -> sending claim.
_REMOVE = f"""
    WITH gone AS (
        UPDATE subscriptions SET removed_at = now(), updated_at = now()
         WHERE tenant_id = :tenant_id AND id IN (SELECT id FROM ({_ABSENT_SUBSCRIPTIONS}) AS a)
        RETURNING id),
    skipped AS (
        UPDATE reminders SET status = 'skipped', skip_reason = 'removed', updated_at = now()
         WHERE id IN (SELECT id FROM reminders
                       WHERE tenant_id = :tenant_id AND status = 'pending'
                         AND subscription_id IN (SELECT id FROM gone)
                       ORDER BY id FOR UPDATE)
        RETURNING id)
    SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM skipped)
"""

_REMOVE_CUSTOMERS = f"""
    UPDATE customers c SET removed_at = now(), updated_at = now()
     WHERE c.tenant_id = :tenant_id AND c.removed_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM {_STAGING} s WHERE s.customer_ref = c.external_ref)
       AND NOT EXISTS (SELECT 1 FROM {_KEPT} k
                         JOIN subscriptions sub ON sub.tenant_id = :tenant_id AND sub.import_digest = k.digest
                        WHERE sub.customer_id = c.id)
"""


def unchanged_digests(session: Session, tenant_id: int) -> set[int]:
    """``Catalog.unchanged_digests`` on PostgreSQL: each side read once and hashed (the import's
    settings); a join through the primary key, row by row, would cost seconds on a large tenant."""
    saved = _configure(session, _SETTINGS)
    found = set(session.scalars(text(UNCHANGED_DIGESTS), {"tenant_id": tenant_id}))
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
    session.execute(text(f"DROP TABLE IF EXISTS {_STAGING}"))
    session.execute(text(f"DROP TABLE IF EXISTS {_KEPT}"))
    session.execute(text(_CREATE))
    session.execute(text(_CREATE_KEPT))
    staged, kept = _copy(session, chunks)
    saved = _configure(session, _SETTINGS)
    if kept:
        session.execute(text(f"ANALYZE {_KEPT}"))
        session.execute(text(f"ANALYZE {_STAGING}"))
        session.execute(text("SELECT set_config('enable_nestloop', 'on', true)"))
        session.execute(text(_MATERIALIZE), params)
        session.execute(text("SELECT set_config('enable_nestloop', 'off', true)"))
    # Decided after the kept rows were matched (under their own settings above).
    small = staged + kept <= SMALL_IMPORT_ROWS
    if small:
        _configure(session, _SMALL_SETTINGS)
    session.execute(text(f"ANALYZE {_STAGING}"))
    rejects = _merged([_reject(row) for row in session.execute(text(_REJECTS))])
    if rejects:
        session.execute(text(f"DELETE FROM {_STAGING} WHERE line = ANY(:lines)"), {"lines": [r[0] for r in rejects]})
    plan = _plan(session, params, full_sync, rejects, small)
    applied = approve(plan)
    if applied:
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended('tenant-sweep:' || :tenant_id, 0))"), params
        )
        session.execute(text(_MERGE_CUSTOMERS.format(probe=_PROBE[small])), params)
        merge = _MERGE_SUBSCRIPTIONS.format(customers=_JOIN_CUSTOMERS[small])
        session.execute(text(merge), params)
        if full_sync:
            session.execute(text(_REMOVE), params)
            session.execute(text(_REMOVE_CUSTOMERS), params)
    session.execute(text(f"DROP TABLE {_STAGING}"))
    session.execute(text(f"DROP TABLE {_KEPT}"))
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
# only drive from the staging side, and its one inner join probes per row (``_PROBE_CUSTOMERS``).
SMALL_IMPORT_ROWS = 10_000
_SMALL_SETTINGS = {"enable_nestloop": "on"}


def _configure(session: Session, settings: dict[str, str]) -> dict[str, str]:
    """Set ``settings`` for the transaction; returns their previous values."""
    previous = {}
    for name, value in settings.items():
        previous[name] = session.execute(text("SELECT current_setting(:name)"), {"name": name}).scalar_one()
        session.execute(text("SELECT set_config(:name, :value, true)"), {"name": name, "value": value})
    return previous


def _copy(session: Session, chunks: Iterable[ImportChunk]) -> tuple[int, int]:
    """Stream every chunk into the staging tables with COPY, in the session's transaction; how many
    rows were staged and how many kept."""
    raw: Any = session.connection().connection.driver_connection
    staged = kept = 0
    with raw.cursor() as cursor:
        for chunk in chunks:
            staged += len(chunk.rows)
            digests: Sequence[int | None] = chunk.digests or [None] * len(chunk.rows)
            with cursor.copy(f"COPY {_STAGING} ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
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
                # Two integers a row, written as one text block: write_row's per-row call was most of
                # the cost of a re-import's kept rows.
                with cursor.copy(f"COPY {_KEPT} (line, digest) FROM STDIN") as copy:
                    copy.write("".join(f"{line}\t{digest}\n" for line, digest in chunk.kept))
    return staged, kept


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
    session: Session, params: dict[str, int], full_sync: bool, rejects: list[tuple[int, str]], small: bool
) -> ImportPlan:
    counts = dict.fromkeys(("created", "updated", "renewed", "unchanged", "removed"), 0)
    firsts: dict[str, list[tuple[int, str]]] = {"created": [], "updated": [], "renewed": []}
    plan = _PLAN.format(customers=_LEFT_JOIN_CUSTOMERS[small])
    for kind, renewed, n, lines, labels in session.execute(text(plan), params):
        counts[kind] += n
        for name in (kind, "renewed") if renewed else (kind,):
            if name != "unchanged":
                firsts[name] += zip(lines, labels, strict=True)
        if renewed:
            counts["renewed"] += n
    counts["unchanged"] += int(session.execute(text(f"SELECT count(*) FROM {_KEPT}")).scalar_one())
    samples = {name: [label for _, label in sorted(pairs)[:5]] for name, pairs in firsts.items()}
    samples["removed"] = []
    if full_sync:
        query = (
            f'SELECT count(*), (array_agg(label ORDER BY label COLLATE "C"))[1:5] FROM ({_ABSENT_SUBSCRIPTIONS}) AS a'
        )

        removed, labels = session.execute(text(query), params).one()
        counts["removed"], samples["removed"] = int(removed), list(labels or [])
    active = int(session.execute(text(_ACTIVE), params).scalar_one()) if full_sync else 0
    return ImportPlan(ImportCounts(**counts), samples, rejects, active)
