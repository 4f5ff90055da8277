"""The daily sweep of one tenant on fakes: what it claims, skips, publishes, holds back and reports."""

from __future__ import annotations

import dataclasses
import datetime as dt

from tenant_worker.config import Settings
from tenant_worker.domain.localtime import SendingWindow
from tenant_worker.domain.model import ReminderStatus, SkipReason, TenantStatus
from tenant_worker.services.sweep import preview_sweep, sweep_tenant, tenants_to_sweep
from tests.conftest import customer
from tests.fakes import FakeClock, FakeQueue, FakeStorage
from tests.unit.services.conftest import TODAY, NewTenant, due_customers, make_settings

QUIET_UNTIL_EVENING = {"sending_window": SendingWindow(dt.time(20), dt.time(21)), "send_time": dt.time(20)}


def test_sweep_claims_the_reminders_due_today_and_publishes_them_on_the_tenants_queue(
    storage: FakeStorage, queue: FakeQueue, settings: Settings, clock: FakeClock, new_tenant: NewTenant
) -> None:
    tenant = new_tenant()
    storage.add_customers(tenant, [*due_customers(3, days_left=5), *due_customers(2, days_left=9, prefix="later")])

    report = sweep_tenant(storage, tenant.slug, queue, settings, now=clock.now())

    assert (report.local_date, report.claimed, report.skipped, report.enqueued) == (TODAY.isoformat(), 3, 0, 3)
    assert (report.backlog, report.not_enqueued, report.deferred, report.error) == (0, 0, 0, None)
    rows = storage.reminders(tenant)
    assert [(row.window_days, row.status) for row in rows] == [(5, ReminderStatus.PENDING)] * 3
    assert all(row.enqueued_at is not None for row in rows)
    assert [(task.tenant_id, task.queue, sorted(task.reminder_ids)) for task in queue.tasks] == [
        (tenant.id, tenant.queue, [row.id for row in rows])
    ]


def test_sweep_records_why_it_skips_reminders_and_publishes_none_of_them(
    storage: FakeStorage, queue: FakeQueue, settings: Settings, clock: FakeClock, new_tenant: NewTenant
) -> None:
    tenant = new_tenant()
    expires_on = TODAY + dt.timedelta(days=3)
    storage.add_customers(
        tenant,
        [
            customer("ok", expires_on),
            customer("opted-out", expires_on, opted_out=True),
            customer("cancelled", expires_on, status="cancelled"),
            # A customer stored without a usable number (NULL), as older imports left them.
            dataclasses.replace(customer("no-phone", expires_on), phone=None),  # type: ignore[arg-type]
        ],
    )

    report = sweep_tenant(storage, tenant.slug, queue, settings, now=clock.now())

    assert (report.claimed, report.skipped, report.enqueued) == (4, 3, 1)
    skipped = storage.reminders(tenant, ReminderStatus.SKIPPED)
    assert sorted(str(row.skip_reason) for row in skipped) == sorted(
        [SkipReason.OPTED_OUT, SkipReason.SUBSCRIPTION_INACTIVE, SkipReason.INVALID_PHONE]
    )
    assert all(row.enqueued_at is None for row in skipped)
    (pending,) = storage.reminders(tenant, ReminderStatus.PENDING)
    assert queue.ids == [pending.id]


def test_sweep_publishes_at_most_max_batches_per_tenant_and_reports_the_rest_as_backlog(
    storage: FakeStorage, queue: FakeQueue, clock: FakeClock, new_tenant: NewTenant
) -> None:
    settings = make_settings(send_batch_size=2, max_batches_per_tenant=2)
    tenant = new_tenant()
    storage.add_customers(tenant, due_customers(7))

    report = sweep_tenant(storage, tenant.slug, queue, settings, now=clock.now())

    assert (report.claimed, report.enqueued, report.backlog) == (7, 4, 3)
    assert [len(task.reminder_ids) for task in queue.tasks] == [2, 2]
    waiting = [row.id for row in storage.reminders(tenant) if row.enqueued_at is None]
    assert len(waiting) == 3 and not set(waiting) & set(queue.ids)


def test_a_second_sweep_on_the_same_day_claims_and_publishes_nothing(
    storage: FakeStorage, queue: FakeQueue, settings: Settings, clock: FakeClock, new_tenant: NewTenant
) -> None:
    tenant = new_tenant()
    storage.add_customers(tenant, due_customers(3))
    sweep_tenant(storage, tenant.slug, queue, settings, now=clock.now())
    clock.advance(dt.timedelta(minutes=5))

    again = sweep_tenant(storage, tenant.slug, queue, settings, now=clock.now())

    assert (again.claimed, again.enqueued, again.re_enqueued, again.backlog) == (0, 0, 0, 0)
    assert len(storage.reminders(tenant)) == 3
    assert len(queue.tasks) == 1


def test_a_later_sweep_publishes_again_the_reminders_whose_task_was_lost(
    storage: FakeStorage, queue: FakeQueue, settings: Settings, clock: FakeClock, new_tenant: NewTenant
) -> None:
    tenant = new_tenant()
    storage.add_customers(tenant, due_customers(3))
    first = sweep_tenant(storage, tenant.slug, queue, settings, now=clock.now())
    clock.advance(dt.timedelta(seconds=settings.requeue_after_seconds + 1))

    again = sweep_tenant(storage, tenant.slug, queue, settings, now=clock.now())

    assert (first.enqueued, again.claimed, again.enqueued, again.re_enqueued) == (3, 0, 0, 3)
    assert [sorted(task.reminder_ids) for task in queue.tasks] == [sorted(queue.tasks[0].reminder_ids)] * 2


def test_sweep_in_quiet_hours_claims_but_publishes_nothing_and_reports_the_reminders_deferred(
    storage: FakeStorage, queue: FakeQueue, settings: Settings, clock: FakeClock, new_tenant: NewTenant
) -> None:
    tenant = new_tenant(**QUIET_UNTIL_EVENING)
    storage.add_customers(tenant, due_customers(3))

    report = sweep_tenant(storage, tenant.slug, queue, settings, now=clock.now())

    assert (report.claimed, report.enqueued, report.deferred) == (3, 0, 3)
    assert queue.tasks == []
    assert [(row.status, row.enqueued_at) for row in storage.reminders(tenant)] == [(ReminderStatus.PENDING, None)] * 3


def test_a_broker_that_refuses_a_batch_leaves_it_and_the_rest_unpublished_and_reports_them(
    storage: FakeStorage, clock: FakeClock, new_tenant: NewTenant
) -> None:
    settings = make_settings(send_batch_size=2)
    tenant = new_tenant()
    storage.add_customers(tenant, due_customers(5))
    queue = BrokerDiesAfter(accepted_tasks=1)

    report = sweep_tenant(storage, tenant.slug, queue, settings, now=clock.now())

    assert (report.claimed, report.enqueued, report.not_enqueued, report.backlog) == (5, 2, 3, 3)
    assert report.error is not None and "3 pending reminders not enqueued" in report.error
    published = {row.id for row in storage.reminders(tenant) if row.enqueued_at is not None}
    assert published == set(queue.ids)
    assert len(storage.reminders(tenant, ReminderStatus.PENDING)) == 5


def test_a_broker_that_is_down_leaves_every_claimed_reminder_pending_and_unpublished(
    storage: FakeStorage, queue: FakeQueue, settings: Settings, clock: FakeClock, new_tenant: NewTenant
) -> None:
    tenant = new_tenant()
    storage.add_customers(tenant, due_customers(3))
    queue.fail(None)

    report = sweep_tenant(storage, tenant.slug, queue, settings, now=clock.now())

    assert (report.claimed, report.enqueued, report.not_enqueued) == (3, 0, 3)
    assert [(row.status, row.enqueued_at) for row in storage.reminders(tenant)] == [(ReminderStatus.PENDING, None)] * 3


def test_a_paused_tenant_is_not_swept(
    storage: FakeStorage, queue: FakeQueue, settings: Settings, clock: FakeClock, new_tenant: NewTenant
) -> None:
    tenant = new_tenant(status=TenantStatus.PAUSED)
    storage.add_customers(tenant, due_customers(3))

    report = sweep_tenant(storage, tenant.slug, queue, settings, now=clock.now())

    assert report.error == "tenant is paused; nothing swept"
    assert (report.claimed, report.enqueued) == (0, 0)
    assert storage.reminders(tenant) == [] and queue.tasks == []


def test_sweep_uses_the_tenants_own_calendar_date(
    storage: FakeStorage, queue: FakeQueue, settings: Settings, clock: FakeClock, new_tenant: NewTenant
) -> None:
    # 11:00 UTC on 2 March is already 3 March in Kiritimati (UTC+14): a reminder due that day goes out.
    clock.advance(dt.timedelta(hours=2))
    tenant = new_tenant(timezone="Pacific/Kiritimati")
    storage.add_customers(tenant, [customer("c", TODAY + dt.timedelta(days=6))])

    report = sweep_tenant(storage, tenant.slug, queue, settings, now=clock.now())

    assert (report.local_date, report.claimed) == ("2026-03-03", 1)
    assert storage.reminders(tenant)[0].local_date == dt.date(2026, 3, 3)


def test_sweep_of_a_given_date_claims_what_was_due_that_day(
    storage: FakeStorage, queue: FakeQueue, settings: Settings, clock: FakeClock, new_tenant: NewTenant
) -> None:
    tenant = new_tenant()
    storage.add_customers(tenant, due_customers(2, days_left=6))
    yesterday_due = TODAY + dt.timedelta(days=1)

    report = sweep_tenant(storage, tenant.slug, queue, settings, local_date=yesterday_due, now=clock.now())

    assert (report.local_date, report.claimed, report.enqueued) == (yesterday_due.isoformat(), 2, 2)


def test_preview_renders_what_a_sweep_would_send_and_writes_nothing(
    storage: FakeStorage, clock: FakeClock, new_tenant: NewTenant
) -> None:
    tenant = new_tenant(max_segments=1)
    expires_on = TODAY + dt.timedelta(days=5)
    storage.add_customers(
        tenant,
        [
            customer("short", expires_on, name="Ann"),
            customer("long", expires_on, name="B" * 120),
            customer("opted-out", expires_on, opted_out=True),
        ],
    )

    shown, day, lines = preview_sweep(storage, tenant.slug, now=clock.now())

    assert (shown.slug, day) == (tenant.slug, TODAY)
    by_name = {line.body.split(",")[0] if line.body else line.skip_reason: line for line in lines}
    assert by_name["Hi Ann"].body == ("Hi Ann, your Fiber 100 expires on March 7, 2026 (5 days). Pay €29.95.")
    assert (by_name["Hi Ann"].segments, by_name["Hi Ann"].skip_reason, by_name["Hi Ann"].window) == (1, None, 5)
    assert by_name["Hi " + "B" * 120].skip_reason == SkipReason.TOO_LONG
    assert by_name[SkipReason.OPTED_OUT].body is None
    assert storage.reminders(tenant) == []


def test_every_active_tenant_is_swept_and_no_paused_one(storage: FakeStorage, new_tenant: NewTenant) -> None:
    active = [new_tenant(), new_tenant()]
    new_tenant(status=TenantStatus.PAUSED)

    assert tenants_to_sweep(storage) == sorted(t.slug for t in active)


class BrokerDiesAfter(FakeQueue):
    """A broker that accepts ``accepted_tasks`` tasks and then goes down."""

    def __init__(self, accepted_tasks: int) -> None:
        super().__init__()
        self.accepted_tasks = accepted_tasks

    def enqueue(
        self, tenant_id: int, reminder_ids: list[int], countdown: float = 0.0, queue: str | None = None
    ) -> None:
        if len(self.tasks) >= self.accepted_tasks:
            self.fail(None)
        super().enqueue(tenant_id, reminder_ids, countdown, queue)
