"""The recovery tick's cross-tenant ledger statements (``adapters.ledger_repair``) on the fake tables."""

from __future__ import annotations

import dataclasses
import datetime as dt

from tenant_worker.domain.model import ReminderStatus
from tenant_worker.domain.records import PruneCursor, PrunedBatch, RepairedRow
from tests.fakes.ledger import PENDING, SENDING, is_published_pending, is_waiting
from tests.fakes.tables import FakeSession, ReminderRow, Tables, check_reminder


class FakeLedgerMaintenance:
    """``domain.storage.LedgerMaintenance`` on the fake tables; spans every tenant, like its SQL twin."""

    def __init__(self, session: FakeSession) -> None:
        self._session = session

    def repair_stale_sending(self, claimed_before: dt.datetime, max_attempts: int, limit: int) -> list[RepairedRow]:
        """Settle up to ``limit`` of the oldest rows claimed before ``claimed_before`` and still sending:
        started -> unknown; not started -> pending (unpublished), or failed after ``max_attempts``."""
        self._session.statement()
        tables = self._session.tables
        now = self._session.transaction_now()
        stale = sorted(
            (
                row
                for row in tables.reminders.values()
                if row.status == SENDING and _before(row.updated_at, claimed_before)
            ),
            key=lambda row: (row.updated_at, row.id),
        )[: max(limit, 0)]
        repaired = []
        for row in stale:
            if row.send_started_at is not None:
                status, enqueued_at = ReminderStatus.UNKNOWN.value, row.enqueued_at
                error = "worker lost while sending: it may have been delivered"
            elif row.attempts >= max_attempts:
                status, enqueued_at = ReminderStatus.FAILED.value, None
                error = f"worker lost before sending, {row.attempts} times"
            else:
                status, enqueued_at = PENDING, None
                error = "worker lost before sending; sending again"
            tables.reminders[row.id] = check_reminder(
                dataclasses.replace(row, status=status, enqueued_at=enqueued_at, last_error=error, updated_at=now)
            )
            repaired.append(RepairedRow(row.tenant_id, row.id, status))
        return repaired

    def forget_publications(self) -> int:
        """Every published pending reminder becomes unpublished; how many."""
        self._session.statement()
        tables = self._session.tables
        published = [row for row in tables.reminders.values() if is_published_pending(row)]
        for row in published:
            tables.reminders[row.id] = dataclasses.replace(row, enqueued_at=None)
        return len(published)

    def tenants_with_lost_tasks(self, published_before: dt.datetime) -> list[int]:
        """Tenants with reminders published before ``published_before`` and still pending, by id."""
        self._session.statement()
        rows = self._session.tables.reminders.values()
        return sorted(
            {row.tenant_id for row in rows if is_published_pending(row) and _before(row.enqueued_at, published_before)}
        )

    def tenants_with_unpublished(self) -> list[int]:
        """Tenants with pending reminders never published, by id."""
        self._session.statement()
        return sorted({row.tenant_id for row in self._session.tables.reminders.values() if is_waiting(row)})

    # Retention (``ledger prune``).

    def prune(self, older_than: dt.datetime, limit: int, after: PruneCursor | None = None) -> PrunedBatch:
        """Examine the next ``limit`` closed rows older than ``older_than`` after ``after`` (by
        ``(updated_at, id)``) and delete the prunable ones (see :func:`_prunable`)."""
        self._session.statement()
        if limit <= 0:
            return PrunedBatch(0, 0, None)
        tables = self._session.tables
        examined = sorted(
            (
                row
                for row in tables.reminders.values()
                if row.status not in (PENDING, SENDING)
                and _before(row.updated_at, older_than)
                and (after is None or (row.updated_at, row.id) > after)
            ),
            key=lambda row: (row.updated_at, row.id),
        )[:limit]
        doomed = [row for row in examined if _prunable(tables, row)]
        for row in doomed:
            del tables.reminders[row.id]
        last = examined[-1] if examined else None
        return PrunedBatch(len(examined), len(doomed), (last.updated_at, last.id) if last else None)  # type: ignore[arg-type]

    def count_prunable(self, older_than: dt.datetime) -> int:
        """How many rows :meth:`prune` would delete with this cut-off."""
        self._session.statement()
        tables = self._session.tables
        return sum(
            1
            for row in tables.reminders.values()
            if row.status not in (PENDING, SENDING) and _before(row.updated_at, older_than) and _prunable(tables, row)
        )


def _prunable(tables: Tables, row: ReminderRow) -> bool:
    """A closed row of a past cycle or of a removed subscription or customer (SQL's ``_PRUNABLE``)."""
    subscription = tables.subscriptions[row.subscription_id]
    customer = tables.customers[subscription.customer_id]
    removed = subscription.removed_at is not None or customer.removed_at is not None
    return row.expires_on != subscription.expires_on or removed


def _before(stamp: dt.datetime | None, instant: dt.datetime) -> bool:
    """SQL's ``stamp < instant``: false for NULL."""
    return stamp is not None and stamp < instant
