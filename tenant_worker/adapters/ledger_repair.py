"""Cross-tenant repairs of the reminder ledger for the recovery tick, each an index range scan.

The tick runs every ``RECOVERY_INTERVAL_SECONDS`` over every tenant, so nothing here may read the
ledger: rows claimed long ago and still ``sending`` come from ``reminders_sending_since_idx`` and
tenants with lost tasks from ``reminders_published_since_idx`` (migration 0005), both ordered by age,
so a tick costs what it repairs. Tenant isolation is kept by returning each row's tenant: the
caller reports and republishes per tenant, through the tenant-scoped repository.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text
from sqlalchemy.orm import Session

from tenant_worker.adapters.orm import CLOSED, PUBLISHED, SENDING, WAITING
from tenant_worker.domain.records import PruneCursor, PrunedBatch, RepairedRow

# What a stale ``sending`` row becomes: its request never started -> back to pending (unpublished,
# so the tenant's next top-up publishes it) unless it already lost its worker SEND_MAX_ATTEMPTS
# times (something about it kills workers); started -> unknown (it may have been delivered).
_REPAIR_SQL = f"""
    UPDATE reminders AS r
       SET status = CASE WHEN r.send_started_at IS NOT NULL THEN 'unknown'
                         WHEN r.attempts >= :max_attempts THEN 'failed'
                         ELSE 'pending' END,
           enqueued_at = CASE WHEN r.send_started_at IS NULL THEN NULL ELSE r.enqueued_at END,
           last_error = CASE WHEN r.send_started_at IS NOT NULL
                                  THEN 'worker lost while sending: it may have been delivered'
                             WHEN r.attempts >= :max_attempts
                                  THEN 'worker lost before sending, ' || r.attempts || ' times'
                             ELSE 'worker lost before sending; sending again' END,
           updated_at = now()
     WHERE r.id = ANY(ARRAY(SELECT id FROM reminders WHERE {SENDING} AND updated_at < :before
                             ORDER BY updated_at LIMIT :limit))
       AND r.status = 'sending' AND r.updated_at < :before
    RETURNING r.tenant_id, r.id, r.status
"""

# Retention: the closed rows last changed before the cut-off that the window rule no longer reads: a
# past cycle's (the subscription's expiry moved on) or a removed subscription's or customer's. The rows
# of a current expiry are read by the claim (domain/windows.py) and always stay.
_PRUNABLE = f"""
    SELECT r.id FROM reminders AS r
      JOIN subscriptions AS s ON s.id = r.subscription_id
      JOIN customers AS c ON c.id = s.customer_id
     WHERE r.{CLOSED} AND r.updated_at < :before
       AND (r.expires_on <> s.expires_on OR s.removed_at IS NOT NULL OR c.removed_at IS NOT NULL)
"""
# One batch: the next ``limit`` closed rows older than the cut-off after the cursor, a range scan of
# ``reminders_closed_since_idx`` (updated_at, id) (migration 0008) that starts where the previous batch
# stopped, so neither the rows kept (a current expiry's, at the old end forever) nor the index entries of
# rows deleted by earlier batches are read again. Each examined row looks its subscription and customer
# up by primary key (a subquery per row, so the planner cannot pick a join that reads every
# subscription per batch); the prunable ones are deleted by primary key, their conditions re-checked
# on a row a concurrent statement changed meanwhile (e.g. an operator's retry).
_PRUNE_SQL = f"""
    WITH examined AS MATERIALIZED (
        SELECT r.id, r.updated_at,
               (SELECT r.expires_on <> s.expires_on OR s.removed_at IS NOT NULL OR c.removed_at IS NOT NULL
                  FROM subscriptions AS s JOIN customers AS c ON c.id = s.customer_id
                 WHERE s.id = r.subscription_id) AS prunable
          FROM reminders AS r
         WHERE r.{CLOSED} AND r.updated_at < :before
           AND (r.updated_at, r.id) > (CAST(:after_at AS timestamptz), CAST(:after_id AS bigint))
         ORDER BY r.updated_at, r.id LIMIT :limit
    ), deleted AS (
        DELETE FROM reminders AS d
         WHERE d.id = ANY(ARRAY(SELECT e.id FROM examined AS e WHERE e.prunable))
           AND d.{CLOSED} AND d.updated_at < :before
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM examined) AS examined, (SELECT count(*) FROM deleted) AS deleted,
           last.updated_at, last.id
      FROM (SELECT 1) AS one
      LEFT JOIN (SELECT updated_at, id FROM examined ORDER BY updated_at DESC, id DESC LIMIT 1) AS last ON true
"""

# Before any row (a cursor for the first batch).
_BEGINNING = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class SqlLedgerMaintenance:
    """``domain.storage.LedgerMaintenance`` on PostgreSQL, in the caller's session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def repair_stale_sending(self, claimed_before: dt.datetime, max_attempts: int, limit: int) -> list[RepairedRow]:
        """Settle up to ``limit`` rows claimed before ``claimed_before`` and still ``sending``.

        Atomic against the claim's own ``mark_started`` (row locks, re-checked after a wait), so a row is
        either marked started by its live task or put back to pending here, never both."""
        rows = self.session.execute(
            text(_REPAIR_SQL), {"before": claimed_before, "max_attempts": max_attempts, "limit": limit}
        )
        return [RepairedRow(row.tenant_id, row.id, row.status) for row in rows]

    def forget_publications(self) -> int:
        """Mark every published ``pending`` reminder unpublished: the broker lost their tasks (it lost its
        data), so waiting ``REQUEUE_AFTER_SECONDS`` for them would only delay the tenants. Reads the
        published rows' own index; a duplicate task for a row whose task did survive is harmless."""
        result = self.session.execute(text(f"UPDATE reminders SET enqueued_at = NULL WHERE {PUBLISHED}"))
        return int(getattr(result, "rowcount", 0))

    def tenants_with_lost_tasks(self, published_before: dt.datetime) -> list[int]:
        """Tenants with reminders published before ``published_before`` and still pending: their task
        was lost (Redis restarted without its data, a worker killed between stamp and publish)."""
        return list(
            self.session.scalars(
                text(f"""
                    SELECT DISTINCT tenant_id FROM reminders
                     WHERE {PUBLISHED} AND enqueued_at < :before
                """),
                {"before": published_before},
            )
        )

    def tenants_with_unpublished(self) -> list[int]:
        """Tenants with pending reminders never published (quiet hours, a paused gateway, a refused
        publish, a repaired row): a loose index scan of ``reminders_waiting_idx``, one probe per tenant,
        however large their backlogs."""
        return list(
            self.session.scalars(
                text(f"""
                    WITH RECURSIVE waiting(tenant_id) AS (
                        (SELECT tenant_id FROM reminders WHERE {WAITING}
                          ORDER BY tenant_id, id LIMIT 1)
                        UNION ALL
                        SELECT (SELECT r.tenant_id FROM reminders r
                                 WHERE ({WAITING}) AND r.tenant_id > w.tenant_id
                                 ORDER BY r.tenant_id, r.id LIMIT 1)
                          FROM waiting w WHERE w.tenant_id IS NOT NULL)
                    SELECT tenant_id FROM waiting WHERE tenant_id IS NOT NULL
                """)
            )
        )

    # Retention (``ledger prune``).

    def prune(self, older_than: dt.datetime, limit: int, after: PruneCursor | None = None) -> PrunedBatch:
        """Examine the next ``limit`` closed rows older than ``older_than`` after ``after`` and delete the
        prunable ones (see ``_PRUNE_SQL``): one statement, an index range scan that stops at ``limit``."""
        if limit <= 0:
            return PrunedBatch(0, 0, None)
        after_at, after_id = after or (_BEGINNING, 0)
        row = self.session.execute(
            text(_PRUNE_SQL), {"before": older_than, "limit": limit, "after_at": after_at, "after_id": after_id}
        ).one()
        last = (row.updated_at, row.id) if row.id is not None else None
        return PrunedBatch(int(row.examined), int(row.deleted), last)

    def count_prunable(self, older_than: dt.datetime) -> int:
        """How many rows :meth:`prune` would delete with this cut-off (a dry run: reads, writes nothing)."""
        return int(self.session.scalar(text(f"SELECT count(*) FROM ({_PRUNABLE}) AS p"), {"before": older_than}) or 0)
