"""The reminder-window rule through the real database: the SQL claim agrees with the pure rule."""

from __future__ import annotations

import datetime as dt
import threading
from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tenant_worker.adapters.orm import ReminderRow
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.config import Settings
from tenant_worker.domain.windows import due_window
from tenant_worker.services.sweep import sweep_tenant
from tests.conftest import RecordingQueue, add_customers, customer

BASE = dt.date(2026, 3, 1)


def ledger(sessions: sessionmaker[Session], tenant_id: int) -> dict[tuple[int, dt.date], list[int]]:
    """(subscription, expires_on) -> windows in the order they were created."""
    with sessions() as session:
        rows = session.scalars(
            select(ReminderRow).where(ReminderRow.tenant_id == tenant_id).order_by(ReminderRow.id)
        ).all()
    result: dict[tuple[int, dt.date], list[int]] = defaultdict(list)
    for row in rows:
        result[(row.subscription_id, row.expires_on)].append(row.window_days)
    return dict(result)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    offsets=st.lists(st.integers(min_value=0, max_value=8), min_size=1, max_size=4),
    sweep_days=st.lists(st.integers(min_value=-2, max_value=10), min_size=1, max_size=12),
    windows=st.sets(st.integers(min_value=1, max_value=7), min_size=1, max_size=3),
)
def test_random_sweep_sequences_give_exactly_the_ledger_the_rule_predicts(
    sessions, settings_fixture, make_tenant, offsets, sweep_days, windows
):
    tenant = make_tenant(windows=tuple(windows))
    add_customers(sessions, tenant, [customer(f"c{i}", BASE + dt.timedelta(days=o)) for i, o in enumerate(offsets)])
    queue = RecordingQueue()
    for day in sweep_days:
        sweep_tenant(sql_unit_of_work(sessions), tenant.slug, queue, settings_fixture, BASE + dt.timedelta(days=day))

    expected: dict[int, list[int]] = defaultdict(list)
    for day in sweep_days:
        for i, offset in enumerate(offsets):
            window = due_window(BASE + dt.timedelta(days=day), BASE + dt.timedelta(days=offset), windows, expected[i])
            if window is not None:
                expected[i].append(window)
    actual = ledger(sessions, tenant.id)
    with sessions() as session:
        days = session.execute(
            select(ReminderRow.subscription_id, ReminderRow.local_date).where(ReminderRow.tenant_id == tenant.id)
        ).all()
    assert len(days) == len(set(days)), "two reminders for one subscription on the same local day"
    assert sorted(actual.values()) == sorted(w for w in expected.values() if w)
    for created in actual.values():
        assert created == sorted(created, reverse=True), "a later sweep went back to a larger window"
    assert len(queue.ids) == len(set(queue.ids)) == sum(len(w) for w in actual.values())


def test_two_concurrent_sweeps_of_the_same_date_create_each_reminder_once(sessions, settings_fixture, make_tenant):
    tenant = make_tenant()
    add_customers(sessions, tenant, [customer(f"c{i}", BASE + dt.timedelta(days=i % 6)) for i in range(300)])
    queue = RecordingQueue()
    barrier = threading.Barrier(4)
    reports = []

    def run() -> None:
        barrier.wait()
        reports.append(sweep_tenant(sql_unit_of_work(sessions), tenant.slug, queue, settings_fixture, BASE))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    due = sum(1 for i in range(300) if i % 6 in (1, 2, 3, 4, 5))
    assert sum(r.claimed for r in reports) == due
    assert sum(len(w) for w in ledger(sessions, tenant.id).values()) == due
    assert sorted(queue.ids) == sorted(set(queue.ids))


def test_second_sweep_on_same_day_claims_nothing(sessions, settings_fixture, make_tenant):
    tenant = make_tenant()
    add_customers(sessions, tenant, [customer("a", BASE + dt.timedelta(days=3))])
    first = sweep_tenant(sql_unit_of_work(sessions), tenant.slug, RecordingQueue(), settings_fixture, BASE)
    second = sweep_tenant(sql_unit_of_work(sessions), tenant.slug, RecordingQueue(), settings_fixture, BASE)
    assert (first.claimed, second.claimed, second.enqueued, second.re_enqueued) == (1, 0, 0, 0)


def test_inactive_opted_out_and_numberless_customers_get_a_visible_skipped_row(sessions, settings_fixture, make_tenant):
    tenant = make_tenant()
    expires = BASE + dt.timedelta(days=1)
    add_customers(
        sessions,
        tenant,
        [
            customer("inactive", expires, status="cancelled"),
            customer("optout", expires, opted_out=True),
            customer("ok", expires),
        ],
    )
    queue = RecordingQueue()
    report = sweep_tenant(sql_unit_of_work(sessions), tenant.slug, queue, settings_fixture, BASE)
    with sessions() as session:
        rows = session.scalars(select(ReminderRow).where(ReminderRow.tenant_id == tenant.id)).all()
    assert sorted((r.status, r.skip_reason) for r in rows) == [
        ("pending", None),
        ("skipped", "opted_out"),
        ("skipped", "subscription_inactive"),
    ]
    assert (report.claimed, report.skipped, len(queue.ids)) == (3, 2, 1)


def test_renewal_starts_a_new_reminder_cycle(sessions, settings_fixture, make_tenant):
    tenant = make_tenant()
    add_customers(sessions, tenant, [customer("a", BASE + dt.timedelta(days=1), phone="+31612000001")])
    sweep_tenant(sql_unit_of_work(sessions), tenant.slug, RecordingQueue(), settings_fixture, BASE)
    add_customers(sessions, tenant, [customer("a", BASE + dt.timedelta(days=31), phone="+31612000001")])
    sweep_tenant(
        sql_unit_of_work(sessions), tenant.slug, RecordingQueue(), settings_fixture, BASE + dt.timedelta(days=28)
    )
    assert sorted(ledger(sessions, tenant.id).values()) == [[1], [3]]


def test_reminders_claimed_while_the_broker_is_down_are_enqueued_by_the_next_sweep(
    sessions, settings_fixture: Settings, make_tenant, queue
):
    from tenant_worker.adapters.celery_publisher import CeleryReminderQueue
    from tenant_worker.celery_app import create_app
    from tenant_worker.config import build_redis_url
    from tests.conftest import free_port

    tenant = make_tenant()
    add_customers(sessions, tenant, [customer(f"c{i}", BASE + dt.timedelta(days=3)) for i in range(3)])
    down = Settings(redis_url=build_redis_url("127.0.0.1", free_port()), database_url=settings_fixture.database_url)
    broken = sweep_tenant(
        sql_unit_of_work(sessions), tenant.slug, CeleryReminderQueue(create_app(down)), settings_fixture, BASE
    )
    assert (broken.claimed, broken.enqueued, broken.not_enqueued) == (3, 0, 3)
    assert broken.error and "the recovery tick retries" in broken.error
    recording = RecordingQueue()
    healed = sweep_tenant(sql_unit_of_work(sessions), tenant.slug, recording, settings_fixture, BASE)
    assert (healed.claimed, healed.re_enqueued, len(recording.ids)) == (0, 3, 3)
    again = sweep_tenant(sql_unit_of_work(sessions), tenant.slug, RecordingQueue(), settings_fixture, BASE)
    assert again.re_enqueued == 0
