"""Quiet hours on real PostgreSQL, with a clock the test controls: nothing goes out at night, and
everything held back goes out when the window opens, without any countdown."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from tenant_worker.adapters.orm import ReminderRow, TenantRow
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.domain.ports import NoAlerts
from tenant_worker.services.quiet_hours import release_deferred
from tenant_worker.services.sending import send_reminders
from tenant_worker.services.sweep import sweep_tenant
from tests.conftest import RecordingGateway, RecordingQueue, add_customers, customer

UTC = dt.UTC


def tenant_with_quiet_hours(sessions, make_tenant, timezone: str, start: dt.time, end: dt.time) -> TenantRow:
    tenant = make_tenant(timezone, (3, 1))
    with sessions.begin() as session:
        row = session.get(TenantRow, tenant.id)
        row.window_start, row.window_end = start, end
    add_customers(sessions, tenant, [customer("a", dt.date(2026, 6, 3)), customer("b", dt.date(2026, 6, 3))])
    return tenant


def own(queue: RecordingQueue, tenant: TenantRow) -> list[int]:
    return [i for tenant_id, batch in queue.batches if tenant_id == tenant.id for i in batch]


def pending_unpublished(sessions, tenant_id: int) -> int:
    with sessions() as session:
        rows = session.scalars(select(ReminderRow).where(ReminderRow.tenant_id == tenant_id)).all()
    return sum(1 for r in rows if r.status == "pending" and r.enqueued_at is None)


def test_a_sweep_at_night_claims_but_publishes_nothing_until_the_window_opens(sessions, settings_fixture, make_tenant):
    tenant = tenant_with_quiet_hours(sessions, make_tenant, "Asia/Kolkata", dt.time(8), dt.time(21))
    night = dt.datetime(2026, 5, 31, 20, 0, tzinfo=UTC)  # 01:30 on 1 June in Kolkata
    queue = RecordingQueue()
    report = sweep_tenant(sql_unit_of_work(sessions), tenant.slug, queue, settings_fixture, now=night)
    assert (report.claimed, report.deferred, queue.ids) == (2, 2, [])
    assert pending_unpublished(sessions, tenant.id) == 2

    # 07:59 local: still closed. 08:00 local (02:30 UTC): both are published, once.
    # (Other tests' tenants may have waiting reminders too: only this tenant is looked at.)
    early = release_deferred(
        sql_unit_of_work(sessions), queue, settings_fixture, dt.datetime(2026, 6, 1, 2, 29, tzinfo=UTC)
    )
    assert tenant.slug not in early and not own(queue, tenant)
    released = release_deferred(
        sql_unit_of_work(sessions), queue, settings_fixture, dt.datetime(2026, 6, 1, 2, 30, tzinfo=UTC)
    )
    assert released[tenant.slug] == 2 and len(own(queue, tenant)) == 2
    later = release_deferred(
        sql_unit_of_work(sessions), queue, settings_fixture, dt.datetime(2026, 6, 1, 2, 31, tzinfo=UTC)
    )
    assert tenant.slug not in later and len(own(queue, tenant)) == 2


def test_a_send_task_arriving_after_the_window_closed_leaves_its_reminders_pending(
    sessions, settings_fixture, make_tenant
):
    tenant = tenant_with_quiet_hours(sessions, make_tenant, "Europe/Amsterdam", dt.time(8), dt.time(21))
    queue = RecordingQueue()
    evening = dt.datetime(2026, 6, 1, 18, 0, tzinfo=UTC)  # 20:00 in Amsterdam
    sweep_tenant(sql_unit_of_work(sessions), tenant.slug, queue, settings_fixture, now=evening)
    assert len(queue.ids) == 2
    gateway, executor = RecordingGateway(), ThreadPoolExecutor(2)

    # The task runs at 21:05 local (a backlog, or a retry): nothing is sent, no countdown is scheduled.
    late = dt.datetime(2026, 6, 1, 19, 5, tzinfo=UTC)
    report = send_reminders(
        sql_unit_of_work(sessions), tenant.id, queue.ids, gateway, executor, settings_fixture, NoAlerts(), late
    )
    assert (report.deferred, report.sent, report.retry_ids, gateway.sent) == (2, 0, [], [])
    assert pending_unpublished(sessions, tenant.id) == 2

    morning = dt.datetime(2026, 6, 2, 6, 0, tzinfo=UTC)  # 08:00 local
    again = RecordingQueue()
    assert release_deferred(sql_unit_of_work(sessions), again, settings_fixture, morning)[tenant.slug] == 2
    sent = send_reminders(
        sql_unit_of_work(sessions),
        tenant.id,
        own(again, tenant),
        gateway,
        executor,
        settings_fixture,
        NoAlerts(),
        morning,
    )
    assert sent.sent == 2 and len(gateway.sent) == 2


def test_a_window_spanning_midnight_sends_at_night_and_holds_by_day(sessions, settings_fixture, make_tenant):
    tenant = tenant_with_quiet_hours(sessions, make_tenant, "Europe/Amsterdam", dt.time(22), dt.time(6))
    day = RecordingQueue()
    sweep_tenant(
        sql_unit_of_work(sessions), tenant.slug, day, settings_fixture, now=dt.datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    )
    assert day.ids == []
    night = RecordingQueue()
    assert (
        release_deferred(
            sql_unit_of_work(sessions), night, settings_fixture, dt.datetime(2026, 6, 1, 21, 0, tzinfo=UTC)
        )[tenant.slug]
        == 2
    )
