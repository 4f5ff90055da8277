"""Tenant-scoped data access on PostgreSQL.

The ledger (``SqlLedgerCore`` and its subclass ``SqlLedger``) is bound to one tenant id at
construction and every statement it runs filters on that id, so a service holding tenant A's ledger
cannot read or change tenant B's rows
(the composite foreign keys in ``orm`` make cross-tenant rows impossible to create as well).
The reminder claim is one set-based ``INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING``
implementing :func:`tenant_worker.domain.windows.due_window`, so a sweep's cost follows the number of
subscriptions expiring inside the window horizon (an index range scan), not the size of the tenant.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, select, text, update
from sqlalchemy.orm import Session

from tenant_worker.adapters.orm import CLOSED, IN_FLIGHT, WAITING, ReminderRow
from tenant_worker.domain.model import ReminderStatus
from tenant_worker.domain.records import OUTCOME_COLUMNS, DueReminder, LedgerWrite, SendJob

# Subscriptions due on :today, with the window the rule picks and the reason to skip, if any.
_DUE_SQL = """
    SELECT s.id AS subscription_id, s.expires_on,
           (SELECT min(w) FROM unnest(CAST(:windows AS integer[])) AS w
             WHERE w >= s.expires_on - CAST(:today AS date)) AS window_days,
           CASE WHEN s.status <> 'active' THEN 'subscription_inactive'
                WHEN c.opted_out OR c.opted_out_at IS NOT NULL THEN 'opted_out'
                WHEN c.phone IS NULL THEN 'invalid_phone' END AS skip_reason
      FROM subscriptions s
      JOIN customers c ON c.tenant_id = s.tenant_id AND c.id = s.customer_id
     WHERE s.tenant_id = :tenant_id
       AND s.expires_on BETWEEN CAST(:today AS date) + 1 AND CAST(:today AS date) + :max_window
       AND s.removed_at IS NULL AND c.removed_at IS NULL
"""

# A due window is recorded unless it, or a smaller (later) window, is already in the ledger.
_NOT_RECORDED_SQL = """
    NOT EXISTS (SELECT 1 FROM reminders r
                 WHERE r.subscription_id = due.subscription_id
                   AND r.expires_on = due.expires_on
                   AND r.window_days <= due.window_days)
"""

_CLAIM_SQL = f"""
    WITH due AS ({_DUE_SQL})
    INSERT INTO reminders (tenant_id, subscription_id, expires_on, window_days, local_date, status, skip_reason)
    SELECT :tenant_id, due.subscription_id, due.expires_on, due.window_days, :today,
           CASE WHEN due.skip_reason IS NULL THEN 'pending' ELSE 'skipped' END, due.skip_reason
      FROM due
     WHERE {_NOT_RECORDED_SQL}
     ORDER BY due.subscription_id
    ON CONFLICT (subscription_id, expires_on, window_days) DO NOTHING
    RETURNING id, status
"""

_PREVIEW_SQL = f"""
    WITH due AS ({_DUE_SQL})
    SELECT due.subscription_id, due.expires_on, due.window_days, due.skip_reason FROM due
     WHERE {_NOT_RECORDED_SQL}
     ORDER BY due.subscription_id
"""


class SqlLedgerCore:
    """The dispatch statements of one tenant's ledger (run on every batch); every query filters on
    ``tenant_id``. :class:`~tenant_worker.adapters.ledger_admin.SqlLedger` adds the operator's."""

    def __init__(self, session: Session, tenant_id: int) -> None:
        self.session = session
        self.tenant_id = tenant_id

    def _params(self, **extra: Any) -> dict[str, Any]:
        return {"tenant_id": self.tenant_id, **extra}

    def lock_for_sweep_and_dispatch(self) -> None:
        """Both locks of a sweep that also publishes the tenant's first batches, in one round trip
        (sweep lock first: continuations take only the dispatch lock, so the order cannot deadlock)."""
        self.session.execute(
            text("""
                SELECT pg_advisory_xact_lock(hashtextextended('tenant-sweep:' || :tenant_id, 0)),
                       pg_advisory_xact_lock(hashtextextended('tenant-dispatch:' || :tenant_id, 0))
            """),
            self._params(),
        )

    def claim_due_reminders(self, today: dt.date, windows: Sequence[int]) -> list[tuple[int, str]]:
        """Insert the ledger rows due on ``today``; returns (id, status) of rows created now."""
        rows = self.session.execute(
            text(_CLAIM_SQL), self._params(today=today, windows=list(windows), max_window=max(windows))
        )
        return [(row.id, row.status) for row in rows]

    def preview_due_reminders(self, today: dt.date, windows: Sequence[int]) -> list[DueReminder]:
        """What :meth:`claim_due_reminders` would insert, without writing anything."""
        rows = self.session.execute(
            text(_PREVIEW_SQL), self._params(today=today, windows=list(windows), max_window=max(windows))
        )
        return [DueReminder(r.subscription_id, r.expires_on, r.window_days, r.skip_reason) for r in rows]

    def subscription_jobs(self, subscription_ids: Sequence[int]) -> dict[int, SendJob]:
        """Render data for subscriptions (dry run), keyed by subscription id; reminder id is 0."""
        rows = self.session.execute(
            text("""
                SELECT s.id AS subscription_id, 0 AS reminder_id, 0 AS window_days, 0 AS attempts, s.expires_on,
                       c.name AS customer_name, c.phone, c.locale, s.plan, s.amount, s.currency
                  FROM subscriptions s JOIN customers c ON c.tenant_id = s.tenant_id AND c.id = s.customer_id
                 WHERE s.tenant_id = :tenant_id AND s.id = ANY(:ids)
            """),
            self._params(ids=list(subscription_ids)),
        )
        return {row.subscription_id: _send_job(row) for row in rows}

    def lock_for_dispatch(self) -> None:
        """Serialise publishing of this tenant's batches for the transaction, so two batches finishing
        at once cannot both see room for more work and exceed the per-tenant bound."""
        self.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended('tenant-dispatch:' || :tenant_id, 0))"),
            self._params(),
        )

    def outstanding(self, published_before: dt.datetime) -> int:
        """Reminders whose task is queued or running: ``sending``, or ``pending`` and published
        recently (a retry waiting for its countdown counts too). Read from the small in-flight index,
        so it costs the same for a tenant with 50 or 500,000 reminders waiting."""
        return int(
            self.session.execute(
                text(f"""
                    SELECT count(*) FROM reminders
                     WHERE tenant_id = :tenant_id AND {_IN_FLIGHT}
                       AND (status = 'sending' OR enqueued_at >= :before)
                """),
                self._params(before=published_before),
            ).scalar_one()
        )

    def count_unpublished(self, published_before: dt.datetime) -> int:
        """Pending reminders waiting in the ledger for a task: never published, or published so long
        ago that the task must be lost. For reports; dispatching itself never counts them."""
        return int(
            self.session.execute(
                text(f"""
                    SELECT (SELECT count(*) FROM reminders
                             WHERE tenant_id = :tenant_id AND {_WAITING})
                         + (SELECT count(*) FROM reminders
                             WHERE tenant_id = :tenant_id AND {_IN_FLIGHT}
                               AND status = 'pending' AND enqueued_at < :before)
                """),
                self._params(before=published_before),
            ).scalar_one()
        )

    def cancel_pending(self, skip_reason: str) -> int:
        """Mark every pending reminder ``skipped`` with ``skip_reason``; returns how many. Atomic
        against a send task's ``pending -> sending`` claim, so none of them is sent afterwards.
        One arm per partial index, so the tenant's backlog is read through them, not the whole table."""
        result = self.session.execute(
            text(f"""
                UPDATE reminders SET status = 'skipped', skip_reason = :reason, updated_at = now()
                 WHERE tenant_id = :tenant_id AND (({_WAITING}) OR ({_IN_FLIGHT} AND status = 'pending'))
            """),
            self._params(reason=skip_reason),
        )
        return int(getattr(result, "rowcount", 0))

    def stamp_unpublished(self, published_before: dt.datetime, limit: int) -> list[int]:
        """Stamp ``enqueued_at`` on the oldest ``limit`` pending reminders without a live task and
        return their ids, in one statement that reads ``limit`` entries of each index, not the backlog.

        ``= ANY(ARRAY(...))`` rather than ``IN (...)``: the ids are computed once and looked up by
        primary key, whatever the planner believes about a backlog that a sweep has just inserted
        (with stale statistics, ``IN`` became a nested loop re-running the sub-select per row: 2 s).
        """
        if limit <= 0:
            return []
        rows = self.session.scalars(
            text(f"""
                UPDATE reminders SET enqueued_at = now()
                 WHERE tenant_id = :tenant_id AND status = 'pending' AND id = ANY(ARRAY(
                       SELECT id FROM (
                           (SELECT id FROM reminders WHERE tenant_id = :tenant_id AND {_WAITING}
                             ORDER BY id LIMIT :limit)
                           UNION ALL
                           (SELECT id FROM reminders WHERE tenant_id = :tenant_id AND {_IN_FLIGHT}
                               AND status = 'pending' AND enqueued_at < :before
                             ORDER BY id LIMIT :limit)
                       ) AS waiting ORDER BY id LIMIT :limit))
                RETURNING id
            """),
            self._params(before=published_before, limit=limit),
        )
        return sorted(rows)

    def published_pending(self, published_after: dt.datetime) -> list[int]:
        """Pending reminders whose task was published recently (it is queued, or a retry waits)."""
        return list(
            self.session.scalars(
                select(ReminderRow.id)
                .where(
                    ReminderRow.tenant_id == self.tenant_id,
                    ReminderRow.status == ReminderStatus.PENDING,
                    ReminderRow.enqueued_at >= published_after,
                )
                .order_by(ReminderRow.id)
            )
        )

    def mark_enqueued(self, reminder_ids: Sequence[int], enqueued: bool = True) -> None:
        """Remember that a send task for these reminders is (or, ``enqueued=False``, is not) published."""
        self.session.execute(
            update(ReminderRow)
            .where(ReminderRow.tenant_id == self.tenant_id, ReminderRow.id.in_(reminder_ids))
            .values(enqueued_at=_now() if enqueued else None)
        )

    def defer_pending(self, reminder_ids: Sequence[int]) -> int:
        """Mark these reminders, if still pending, as not published (quiet hours); returns how many."""
        result = self.session.execute(
            update(ReminderRow)
            .where(
                ReminderRow.tenant_id == self.tenant_id,
                ReminderRow.id.in_(reminder_ids),
                ReminderRow.status == ReminderStatus.PENDING,
            )
            .values(enqueued_at=None)
        )
        return int(getattr(result, "rowcount", 0))

    def start_sending(self, reminder_ids: Sequence[int]) -> list[SendJob]:
        """Atomically move ``pending`` rows to ``sending`` and return their jobs.

        Only rows still pending are taken, so a duplicated task delivery finds nothing to send. The
        claim's time (``updated_at``, the same for the whole batch) is the claim's token: marking a
        request started and recording outcomes match on it, so a task that outlived its claim (the
        recovery tick took the rows back) can neither send nor record them.
        """
        rows = self.session.execute(
            text("""
                WITH taken AS (
                    UPDATE reminders SET status = 'sending', attempts = attempts + 1, updated_at = now(),
                                         send_started_at = NULL
                     WHERE tenant_id = :tenant_id AND id = ANY(:ids) AND status = 'pending'
                    RETURNING id, subscription_id, window_days, expires_on, attempts, updated_at)
                SELECT taken.id AS reminder_id, taken.window_days, taken.expires_on, taken.attempts,
                       taken.updated_at AS claimed_at,
                       c.name AS customer_name, c.phone, c.locale, s.plan, s.amount, s.currency
                  FROM taken
                  JOIN subscriptions s ON s.tenant_id = :tenant_id AND s.id = taken.subscription_id
                  JOIN customers c ON c.tenant_id = :tenant_id AND c.id = s.customer_id
                 ORDER BY taken.id
            """),
            self._params(ids=list(reminder_ids)),
        )
        return [_send_job(row) for row in rows]

    def mark_started(self, reminder_ids: Sequence[int], claimed_at: dt.datetime) -> set[int]:
        """Record that these rows' requests may start now; returns the ids this claim still holds.

        Written (and committed by the caller) before any of their requests starts, so a row whose
        worker died with ``send_started_at`` still NULL certainly never reached MessageBird."""
        rows = self.session.scalars(
            text("""
                UPDATE reminders SET send_started_at = now()
                 WHERE tenant_id = :tenant_id AND id = ANY(:ids) AND status = 'sending'
                   AND updated_at = :claimed_at
                RETURNING id
            """),
            self._params(ids=list(reminder_ids), claimed_at=claimed_at),
        )
        return set(rows)

    def finish_many(self, outcomes: Sequence[LedgerWrite], claimed_at: dt.datetime | None) -> None:
        """Record the outcomes of a batch of send attempts (rows this claim holds in ``sending``).

        Rows setting the same columns share one ``UPDATE ... FROM unnest(arrays)``, so a batch of 50
        is one statement, not 50. Columns a row does not set keep their value. Idempotent (a row is
        recorded only while this claim holds it), so a recording cut off by a dropped connection can
        simply run again. ``claimed_at`` None: rows skipped before any claim (none are).
        """
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        now = _now()
        for reminder_id, status, given in outcomes:
            values = {"status": status.value, "updated_at": now, **given}
            if status == ReminderStatus.SENT:
                values.setdefault("sent_at", now)
            if status == ReminderStatus.PENDING:
                # The caller publishes the retry next; if that fails the row is re-published by a sweep.
                values.setdefault("enqueued_at", now)
            columns = tuple(sorted(values))
            unknown = set(columns) - OUTCOME_COLUMNS - {"status", "updated_at"}
            if unknown:
                raise ValueError(f"not a reminder outcome column: {sorted(unknown)}")
            groups.setdefault(columns, []).append({**values, "id": reminder_id})
        for columns, rows in groups.items():
            arrays = ", ".join(["CAST(:id AS bigint[])", *(f"CAST(:{c} AS {_FINISH_COLUMNS[c]}[])" for c in columns)])
            self.session.execute(
                text(f"""
                    UPDATE reminders AS r SET {", ".join(f"{column} = v.{column}" for column in columns)}
                      FROM unnest({arrays}) AS v(id, {", ".join(columns)})
                     WHERE r.tenant_id = :tenant_id AND r.id = v.id AND r.status = 'sending'
                       AND r.updated_at = :claimed_at
                """),
                self._params(
                    claimed_at=claimed_at, **{column: [row[column] for row in rows] for column in ("id", *columns)}
                ),
            )


# The predicates of the ledger's partial indexes (orm.py): reminders waiting for a first task (ordered
# by id, the publish order), reminders with a task queued or running (few: at most a few batches per
# tenant), and closed ones.
_WAITING = f"({WAITING})"
_IN_FLIGHT = f"({IN_FLIGHT})"
_CLOSED = f"({CLOSED})"

# The SQL types of the columns recording an outcome may set (records.OUTCOME_COLUMNS, interpolated
# into finish_many's UPDATE; the outcome arrays are cast to them).
_FINISH_COLUMNS = {
    "status": "text",
    "updated_at": "timestamptz",
    "sent_at": "timestamptz",
    "enqueued_at": "timestamptz",
    "provider_message_id": "text",
    "last_error": "text",
    "skip_reason": "text",
    "body": "text",
    "encoding": "text",
    "segments": "integer",
    "attempts": "integer",
}


def _send_job(row: Row[Any]) -> SendJob:
    return SendJob(
        reminder_id=row.reminder_id,
        window_days=row.window_days,
        expires_on=row.expires_on,
        customer_name=row.customer_name,
        phone=row.phone,
        plan=row.plan,
        amount=row.amount,
        currency=row.currency,
        attempts=row.attempts,
        claimed_at=getattr(row, "claimed_at", None),
        locale=row.locale,
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
