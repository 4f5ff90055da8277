"""The SQL ledger of one tenant: the dispatch statements plus the operator-facing ones (the listing,
counts, reopening ended reminders for a resend). Kept apart from :class:`SqlLedgerCore`'s dispatch
statements, which run on every batch; these run when a person asks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import func, select, text

from tenant_worker.adapters.orm import ReminderRow
from tenant_worker.adapters.repository import _CLOSED, _IN_FLIGHT, _WAITING, SqlLedgerCore
from tenant_worker.domain.records import ReminderView

# A resend never reaches a customer who was removed, opted out (or erased) since the row ended.
_STILL_WANTED = """EXISTS (SELECT 1 FROM subscriptions s JOIN customers c
                             ON c.tenant_id = s.tenant_id AND c.id = s.customer_id
                          WHERE s.tenant_id = reminders.tenant_id AND s.id = reminders.subscription_id
                            AND s.removed_at IS NULL AND c.removed_at IS NULL
                            AND NOT c.opted_out AND c.opted_out_at IS NULL)"""

# Put in front of the previous error of a reopened row (once, however often it is reopened).
_RESENT = "sent again by an operator after: "


class SqlLedger(SqlLedgerCore):
    """``domain.storage.Ledger`` on PostgreSQL for one tenant; every statement filters on ``tenant_id``."""

    def count_status(self, status: str) -> int:
        """How many of the tenant's reminders have ``status``."""
        query = select(func.count()).where(ReminderRow.tenant_id == self.tenant_id, ReminderRow.status == status)
        return int(self.session.scalar(query) or 0)

    def count_ended(self, status: str, since: dt.datetime | None) -> int:
        """Reminders with ``status`` (a closed one) that ended at or after ``since``."""
        return int(
            self.session.execute(
                text(f"""
                    SELECT count(*) FROM reminders
                     WHERE tenant_id = :tenant_id AND {_CLOSED} AND status = :status
                       AND (CAST(:since AS timestamptz) IS NULL OR updated_at >= :since)
                       AND {_STILL_WANTED}
                """),
                self._params(status=status, since=since),
            ).scalar_one()
        )

    def reopen(self, status: str, since: dt.datetime | None) -> list[int]:
        """Put ``status`` reminders (ended at or after ``since``) back to ``pending``, unpublished and
        with fresh attempts; returns their ids. Only closed rows match, so a row being sent is never
        touched, and rows already reopened (pending) or sent do not match a second time."""
        return list(
            self.session.scalars(
                text(f"""
                    UPDATE reminders SET status = 'pending', enqueued_at = NULL, attempts = 0,
                                         send_started_at = NULL, updated_at = now(),
                                         last_error = :prefix || regexp_replace(coalesce(last_error, ''),
                                                                                '^(' || :prefix || ')+', '')
                     WHERE tenant_id = :tenant_id AND {_CLOSED} AND status = :status
                       AND (CAST(:since AS timestamptz) IS NULL OR updated_at >= :since)
                       AND {_STILL_WANTED}
                    RETURNING id
                """),
                self._params(status=status, since=since, prefix=_RESENT),
            )
        )

    def list_reminders(self, status: str | None = None, limit: int = 1000) -> list[ReminderView]:
        """The tenant's ledger (or the rows with ``status``), newest first: the newest ``limit`` of each
        partial index, merged, so a quiet tenant's rows are found without reading anyone else's."""
        ids = self.session.scalars(
            text(f"""
                SELECT id FROM (
                    (SELECT id FROM reminders WHERE tenant_id = :tenant_id AND {_CLOSED}
                        AND (CAST(:status AS text) IS NULL OR status = :status) ORDER BY id DESC LIMIT :limit)
                    UNION ALL
                    (SELECT id FROM reminders WHERE tenant_id = :tenant_id AND {_WAITING}
                        AND (CAST(:status AS text) IS NULL OR status = :status) ORDER BY id DESC LIMIT :limit)
                    UNION ALL
                    (SELECT id FROM reminders WHERE tenant_id = :tenant_id AND {_IN_FLIGHT}
                        AND (CAST(:status AS text) IS NULL OR status = :status) ORDER BY id DESC LIMIT :limit)
                ) AS listed ORDER BY id DESC LIMIT :limit
            """),
            self._params(status=status, limit=limit),
        ).all()
        rows = self.session.scalars(
            select(ReminderRow).where(ReminderRow.tenant_id == self.tenant_id, ReminderRow.id.in_(ids))
        )
        return [_view(row) for row in sorted(rows, key=lambda row: row.id, reverse=True)]

    # Single customer operations (``services.customer_ops``).

    def reminders_of(self, subscription_ids: Sequence[int], *, lock: bool = False) -> list[ReminderView]:
        """Every reminder of these subscriptions, by id (through the ledger's unique index, which
        leads with ``subscription_id``); ``lock``: ``FOR UPDATE``, so a send task's claim or outcome
        for them waits until this unit of work ends."""
        query = (
            select(ReminderRow)
            .where(ReminderRow.tenant_id == self.tenant_id, ReminderRow.subscription_id.in_(list(subscription_ids)))
            .order_by(ReminderRow.id)
        )
        return [_view(row) for row in self.session.scalars(query.with_for_update() if lock else query)]

    def cancel_pending_of(self, subscription_ids: Sequence[int], skip_reason: str) -> int:
        """Mark these subscriptions' pending reminders ``skipped`` with ``skip_reason``; how many.
        One UPDATE, so atomic against a send task's ``pending -> sending`` claim, as ``cancel_pending``."""
        result = self.session.execute(
            text("""
                UPDATE reminders SET status = 'skipped', skip_reason = :reason, updated_at = now()
                 WHERE tenant_id = :tenant_id AND subscription_id = ANY(:ids) AND status = 'pending'
            """),
            self._params(ids=list(subscription_ids), reason=skip_reason),
        )
        return int(getattr(result, "rowcount", 0))

    def erase_reminders_of(self, subscription_ids: Sequence[int]) -> int:
        """Clear the rendered text, MessageBird's message id and the error of these subscriptions' rows.
        ``updated_at`` stays: it is when a closed row ended (``reminders retry --since``), not personal."""
        result = self.session.execute(
            text("""
                UPDATE reminders SET body = NULL, provider_message_id = NULL, last_error = NULL
                 WHERE tenant_id = :tenant_id AND subscription_id = ANY(:ids)
            """),
            self._params(ids=list(subscription_ids)),
        )
        return int(getattr(result, "rowcount", 0))


def _view(row: ReminderRow) -> ReminderView:
    return ReminderView(**{field: getattr(row, field) for field in ReminderView.__dataclass_fields__})
