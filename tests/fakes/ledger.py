"""One tenant's reminder ledger in memory: ``adapters.repository`` and ``adapters.ledger_admin``'s
statements, one method each, on the fake tables.

Every method reads and writes only rows of the ledger's tenant, as every SQL statement filters on
``tenant_id``. Timestamps come from the unit of work: ``transaction_now()`` where the SQL says ``now()``
(PostgreSQL's transaction start, so one claim's rows share one token) and ``wall_now()`` where the
adapter passes Python's clock. The contract suite (tests/contract) runs the same tests on both.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from tenant_worker.domain.model import ReminderStatus
from tenant_worker.domain.records import (
    NO_DELIVERY_STATUS,
    OUTCOME_COLUMNS,
    DayCount,
    DueReminder,
    LedgerWrite,
    ReminderQuery,
    ReminderView,
    SendJob,
)
from tenant_worker.domain.windows import due_window
from tests.fakes.tables import FakeSession, ReminderRow, Tables, check_reminder

PENDING, SENDING = ReminderStatus.PENDING.value, ReminderStatus.SENDING.value
# adapters.ledger_admin._RESENT: put once in front of a reopened row's previous error.
RESENT = "sent again by an operator after: "
_RESENT_AGAIN = re.compile("^(" + re.escape(RESENT) + ")+")


def is_closed(row: ReminderRow) -> bool:
    """``repository._CLOSED``: neither pending nor being sent."""
    return row.status not in (PENDING, SENDING)


def is_waiting(row: ReminderRow) -> bool:
    """``repository._WAITING``: pending, its task never published."""
    return row.status == PENDING and row.enqueued_at is None


def is_published_pending(row: ReminderRow) -> bool:
    """Pending with a task published (the pending half of ``repository._IN_FLIGHT``)."""
    return row.status == PENDING and row.enqueued_at is not None


class FakeLedger:
    """``domain.storage.Ledger`` of one tenant on the fake tables."""

    def __init__(self, session: FakeSession, tenant_id: int) -> None:
        self._session = session
        self._tenant_id = tenant_id

    @property
    def tenant_id(self) -> int:
        """The tenant every method is bound to."""
        return self._tenant_id

    @property
    def _tables(self) -> Tables:
        return self._session.tables

    def _rows(self) -> Iterator[ReminderRow]:
        self._session.statement()
        return (row for row in list(self._tables.reminders.values()) if row.tenant_id == self._tenant_id)

    def _chosen(self, reminder_ids: Iterable[int]) -> Iterator[ReminderRow]:
        """This tenant's rows among ``reminder_ids``, by id (another tenant's ids match nothing)."""
        self._session.statement()
        for reminder_id in sorted(set(reminder_ids)):
            row = self._tables.reminders.get(reminder_id)
            if row is not None and row.tenant_id == self._tenant_id:
                yield row

    def _write(self, row: ReminderRow, **changes: Any) -> ReminderRow:
        new = check_reminder(dataclasses.replace(row, **changes))
        self._tables.reminders[row.id] = new
        return new

    def lock_for_dispatch(self) -> None:
        """Nothing to do: the fake's units of work run one at a time."""
        self._session.statement()

    def lock_for_sweep_and_dispatch(self) -> None:
        """Nothing to do: the fake's units of work run one at a time."""
        self._session.statement()

    def _due(self, today: dt.date, windows: Sequence[int]) -> list[DueReminder]:
        """``repository._DUE_SQL`` and ``_NOT_RECORDED_SQL``: the rule of ``domain.windows.due_window``."""
        windows = list(windows)
        last = today + dt.timedelta(days=max(windows))
        self._session.statement()
        tables = self._tables
        recorded: dict[tuple[int, dt.date], list[int]] = {}
        for row in tables.reminders.values():
            recorded.setdefault((row.subscription_id, row.expires_on), []).append(row.window_days)
        due = []
        for sub in sorted(tables.subscriptions.values(), key=lambda s: s.id):
            if sub.tenant_id != self._tenant_id or not today < sub.expires_on <= last:
                continue
            if sub.removed_at is not None or tables.customers[sub.customer_id].removed_at is not None:
                continue
            window = due_window(today, sub.expires_on, windows, recorded.get((sub.id, sub.expires_on), ()))
            if window is None:
                continue
            customer = tables.customers[sub.customer_id]
            if sub.removed_at is not None or customer.removed_at is not None:
                continue  # as _DUE_SQL: removed customers and subscriptions are never claimed
            reason = (
                "subscription_inactive"
                if sub.status != "active"
                else "opted_out"
                if customer.opted_out or customer.opted_out_at is not None
                else "invalid_phone"
                if customer.phone is None
                else None
            )
            due.append(DueReminder(sub.id, sub.expires_on, window, reason))
        return due

    def claim_due_reminders(self, today: dt.date, windows: Sequence[int]) -> list[tuple[int, str]]:
        """Record what is due on ``today``: pending, or skipped with its reason."""
        claimed = []
        now = self._session.transaction_now()
        for item in self._due(today, windows):
            status = PENDING if item.skip_reason is None else ReminderStatus.SKIPPED.value
            row = ReminderRow(
                id=next(self._tables.reminder_ids),
                tenant_id=self._tenant_id,
                subscription_id=item.subscription_id,
                expires_on=item.expires_on,
                window_days=item.window_days,
                local_date=today,
                status=status,
                skip_reason=item.skip_reason,
                created_at=now,
                updated_at=now,
            )
            self._tables.reminders[row.id] = check_reminder(row)
            claimed.append((row.id, status))
        return claimed

    def preview_due_reminders(self, today: dt.date, windows: Sequence[int]) -> list[DueReminder]:
        """What a claim would record, writing nothing."""
        return self._due(today, windows)

    def subscription_jobs(self, subscription_ids: Sequence[int]) -> dict[int, SendJob]:
        """Render data of these subscriptions (a dry run), by subscription id; reminder id 0."""
        self._session.statement()
        tables = self._tables
        jobs = {}
        for sub_id in subscription_ids:
            sub = tables.subscriptions.get(sub_id)
            if sub is not None and sub.tenant_id == self._tenant_id:
                jobs[sub_id] = _job(self._tables, 0, 0, sub.expires_on, sub_id, 0, None)
        return jobs

    def outstanding(self, published_before: dt.datetime) -> int:
        """Sending, or pending and published at or after ``published_before``."""
        return sum(
            1
            for row in self._rows()
            if row.status == SENDING or (is_published_pending(row) and _at_or_after(row.enqueued_at, published_before))
        )

    def _unpublished(self, published_before: dt.datetime) -> list[ReminderRow]:
        return sorted(
            (
                row
                for row in self._rows()
                if is_waiting(row)
                or (is_published_pending(row) and not _at_or_after(row.enqueued_at, published_before))
            ),
            key=lambda row: row.id,
        )

    def count_unpublished(self, published_before: dt.datetime) -> int:
        """Pending and never published, or published before ``published_before``."""
        return len(self._unpublished(published_before))

    def stamp_unpublished(self, published_before: dt.datetime, limit: int) -> list[int]:
        """Stamp the oldest ``limit`` unpublished pending reminders published now; their ids."""
        if limit <= 0:
            return []
        now = self._session.transaction_now()
        return [self._write(row, enqueued_at=now).id for row in self._unpublished(published_before)[:limit]]

    def published_pending(self, published_after: dt.datetime) -> list[int]:
        """Pending reminders published at or after ``published_after``, by id."""
        rows = (row for row in self._rows() if row.status == PENDING and _at_or_after(row.enqueued_at, published_after))
        return sorted(row.id for row in rows)

    def mark_enqueued(self, reminder_ids: Sequence[int], enqueued: bool = True) -> None:
        """Set (or clear) ``enqueued_at`` of these rows, whatever their status."""
        stamp = self._session.wall_now() if enqueued else None
        for row in self._chosen(reminder_ids):
            self._write(row, enqueued_at=stamp)

    def defer_pending(self, reminder_ids: Sequence[int]) -> int:
        """Clear ``enqueued_at`` of those still pending; how many."""
        return len([self._write(row, enqueued_at=None) for row in self._chosen(reminder_ids) if row.status == PENDING])

    def cancel_pending(self, skip_reason: str) -> int:
        """Every pending reminder becomes skipped with ``skip_reason``; how many."""
        now = self._session.transaction_now()
        pending = [row for row in self._rows() if row.status == PENDING]
        for row in pending:
            self._write(row, status=ReminderStatus.SKIPPED.value, skip_reason=skip_reason, updated_at=now)
        return len(pending)

    def start_sending(self, reminder_ids: Sequence[int]) -> list[SendJob]:
        """Pending -> sending, attempts + 1, ``updated_at`` = the claim's token; their jobs by id."""
        now = self._session.transaction_now()
        jobs = []
        for row in self._chosen(reminder_ids):
            if row.status == PENDING:
                row = self._write(row, status=SENDING, attempts=row.attempts + 1, updated_at=now, send_started_at=None)
                jobs.append(
                    _job(self._tables, row.id, row.window_days, row.expires_on, row.subscription_id, row.attempts, now)
                )
        return jobs

    def mark_started(self, reminder_ids: Sequence[int], claimed_at: dt.datetime) -> set[int]:
        """Stamp ``send_started_at`` on the rows this claim still holds; their ids."""
        now = self._session.transaction_now()
        held = [row for row in self._chosen(reminder_ids) if row.status == SENDING and row.updated_at == claimed_at]
        return {self._write(row, send_started_at=now).id for row in held}

    def finish_many(self, outcomes: Sequence[LedgerWrite], claimed_at: dt.datetime | None) -> None:
        """Record outcomes of rows this claim holds; every column is checked before anything is written."""
        now = self._session.wall_now()
        writes = []
        for reminder_id, status, given in outcomes:
            values: dict[str, Any] = {"status": status.value, "updated_at": now, **given}
            if status == ReminderStatus.SENT:
                values.setdefault("sent_at", now)
            if status == ReminderStatus.PENDING:
                values.setdefault("enqueued_at", now)
            unknown = set(values) - OUTCOME_COLUMNS - {"status", "updated_at"}
            if unknown:
                raise ValueError(f"not a reminder outcome column: {sorted(unknown)}")
            writes.append((reminder_id, values))
        for reminder_id, values in writes:
            for row in self._chosen([reminder_id]):
                if row.status == SENDING and claimed_at is not None and row.updated_at == claimed_at:
                    self._write(row, **values)

    def count_status(self, status: str) -> int:
        """How many of the tenant's reminders have ``status``."""
        return sum(1 for row in self._rows() if row.status == status)

    def _ended(self, status: str, since: dt.datetime | None) -> list[ReminderRow]:
        return sorted(
            (
                row
                for row in self._rows()
                if is_closed(row)
                and row.status == status
                and (since is None or _at_or_after(row.updated_at, since))
                and self._still_wanted(row.subscription_id)
            ),
            key=lambda row: row.id,
        )

    def _still_wanted(self, subscription_id: int) -> bool:
        """As the SQL's resend filter: the subscription and customer are not removed, nor opted out."""
        sub = self._tables.subscriptions.get(subscription_id)
        if sub is None or sub.removed_at is not None:
            return False
        customer = self._tables.customers[sub.customer_id]
        return customer.removed_at is None and not customer.opted_out and customer.opted_out_at is None

    def count_ended(self, status: str, since: dt.datetime | None) -> int:
        """Closed reminders with ``status`` that ended at or after ``since``."""
        return len(self._ended(status, since))

    def reopen(self, status: str, since: dt.datetime | None) -> list[int]:
        """Closed ``status`` rows back to pending, unpublished, attempts 0, the error kept behind a note."""
        now = self._session.transaction_now()
        return [
            self._write(
                row,
                status=PENDING,
                enqueued_at=None,
                attempts=0,
                send_started_at=None,
                updated_at=now,
                last_error=RESENT + _RESENT_AGAIN.sub("", row.last_error or ""),
            ).id
            for row in self._ended(status, since)
        ]

    def list_reminders(self, status: str | None = None, limit: int = 1000) -> list[ReminderView]:
        """The newest ``limit`` rows (with ``status``), newest first."""
        rows = sorted((row for row in self._rows() if status is None or row.status == status), key=lambda r: -r.id)
        return rows[: max(limit, 0)]

    def page_reminders(self, query: ReminderQuery) -> list[ReminderView]:
        """``adapters.ledger_views.page_reminders``: the filters ANDed, newest first, below the cursor."""
        wanted = None if query.subscription_ids is None else set(query.subscription_ids)
        delivery = query.delivery_status
        rows = [
            row
            for row in self._rows()
            if (query.status is None or row.status == query.status)
            and (delivery is None or row.delivery_status == (None if delivery == NO_DELIVERY_STATUS else delivery))
            and (query.since is None or row.local_date >= query.since)
            and (query.until is None or row.local_date <= query.until)
            and (wanted is None or row.subscription_id in wanted)
            and (query.before_id is None or row.id < query.before_id)
        ]
        return sorted(rows, key=lambda row: -row.id)[: max(query.limit, 0)]

    def count_by_day(self, since: dt.date, until: dt.date) -> list[DayCount]:
        """``adapters.ledger_views.count_by_day``: per day, status and delivery status (None first)."""
        counts: dict[tuple[dt.date, str, str | None], int] = {}
        for row in self._rows():
            if since <= row.local_date <= until:
                key = (row.local_date, row.status, row.delivery_status)
                counts[key] = counts.get(key, 0) + 1
        order = sorted(counts, key=lambda k: (k[0], k[1], k[2] is not None, k[2] or ""))
        return [DayCount(day, status, delivery, counts[(day, status, delivery)]) for day, status, delivery in order]

    # Single customer operations (``services.customer_ops``).

    def _of(self, subscription_ids: Sequence[int]) -> list[ReminderRow]:
        wanted = set(subscription_ids)
        return sorted((row for row in self._rows() if row.subscription_id in wanted), key=lambda row: row.id)

    def reminders_of(self, subscription_ids: Sequence[int], *, lock: bool = False) -> list[ReminderView]:
        """Every reminder of these subscriptions, by id (units of work are serialised: no lock needed)."""
        return self._of(subscription_ids)

    def cancel_pending_of(self, subscription_ids: Sequence[int], skip_reason: str) -> int:
        """These subscriptions' pending reminders become skipped with ``skip_reason``; how many."""
        now = self._session.transaction_now()
        pending = [row for row in self._of(subscription_ids) if row.status == PENDING]
        for row in pending:
            self._write(row, status=ReminderStatus.SKIPPED.value, skip_reason=skip_reason, updated_at=now)
        return len(pending)

    def erase_reminders_of(self, subscription_ids: Sequence[int]) -> int:
        """Clear body, provider message id and error of these subscriptions' rows (``updated_at`` stays)."""
        rows = self._of(subscription_ids)
        for row in rows:
            self._write(row, body=None, provider_message_id=None, last_error=None)
        return len(rows)


def _at_or_after(stamp: dt.datetime | None, instant: dt.datetime) -> bool:
    """SQL's ``stamp >= instant``: false for NULL."""
    return stamp is not None and stamp >= instant


def _job(
    tables: Tables,
    reminder_id: int,
    window_days: int,
    expires_on: dt.date,
    subscription_id: int,
    attempts: int,
    claimed_at: dt.datetime | None,
) -> SendJob:
    """A send job joined from the subscription and its customer, as the SQL joins them."""
    sub = tables.subscriptions[subscription_id]
    customer = tables.customers[sub.customer_id]
    return SendJob(
        reminder_id=reminder_id,
        window_days=window_days,
        expires_on=expires_on,
        customer_name=customer.name,
        phone=customer.phone,
        plan=sub.plan,
        amount=sub.amount,
        currency=sub.currency,
        attempts=attempts,
        claimed_at=claimed_at,
        locale=customer.locale,
    )
