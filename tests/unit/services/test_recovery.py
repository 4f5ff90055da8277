"""The recovery tick on fakes: stale claims settled, lost tasks and deferred reminders published
again, the gateway breaker probed, and held-back alerts flushed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from tenant_worker.config import Settings
from tenant_worker.domain.localtime import SendingWindow
from tenant_worker.domain.model import AccessCheck, ReminderStatus
from tenant_worker.domain.records import Tenant
from tenant_worker.services.quiet_hours import release_deferred
from tenant_worker.services.recovery import RecoveryReport, recover
from tenant_worker.services.sweep import sweep_tenant
from tests.fakes import (
    FakeBrokerMarker,
    FakeClock,
    FakeGateway,
    FakeQueue,
    FakeStorage,
    MemoryGatewayBreaker,
    RecordingAlerts,
)
from tests.unit.services.conftest import NewTenant, Sweep, due_customers, make_settings

EVENING = {"sending_window": SendingWindow(dt.time(20), dt.time(21)), "send_time": dt.time(20)}


def tick(
    storage: FakeStorage,
    queue: FakeQueue,
    settings: Settings,
    alerts: RecordingAlerts,
    gateway: FakeGateway,
    breaker: MemoryGatewayBreaker,
    broker: FakeBrokerMarker,
    clock: FakeClock,
) -> RecoveryReport:
    """One recovery tick now."""
    return recover(storage, queue, settings, alerts, gateway, breaker, broker, now=clock.now())


def claimed_by_a_lost_worker(storage: FakeStorage, tenant: Tenant, ids: Sequence[int], started: Sequence[int]) -> None:
    """What a worker killed mid-batch leaves: ``ids`` in ``sending``, ``started`` of them marked started."""
    with storage() as tx:
        ledger = tx.ledger(tenant.id)
        jobs = ledger.start_sending(ids)
        if started:
            ledger.mark_started(started, jobs[0].claimed_at)  # type: ignore[arg-type]


def test_rows_of_a_lost_worker_are_settled_by_whether_their_request_may_have_gone_out(
    storage: FakeStorage,
    queue: FakeQueue,
    settings: Settings,
    alerts: RecordingAlerts,
    gateway: FakeGateway,
    breaker: MemoryGatewayBreaker,
    broker: FakeBrokerMarker,
    clock: FakeClock,
    swept: Sweep,
    new_tenant: NewTenant,
) -> None:
    tenant = new_tenant()
    storage.add_customers(tenant, due_customers(3))
    started, not_started, worn_out = swept(tenant)
    storage.update_reminders([worn_out], attempts=settings.send_max_attempts - 1)
    claimed_by_a_lost_worker(storage, tenant, [started, not_started, worn_out], started=[started])
    clock.advance(settings.stale_sending_seconds + 1)
    queue.tasks.clear()

    report = tick(storage, queue, settings, alerts, gateway, breaker, broker, clock)

    assert (report.requeued, report.unknown, report.failed) == (1, 1, 1)
    assert storage.reminder(started).status == ReminderStatus.UNKNOWN
    assert storage.reminder(worn_out).status == ReminderStatus.FAILED
    assert storage.reminder(not_started).status == ReminderStatus.PENDING
    assert report.released == {tenant.slug: 1} and queue.ids == [not_started], "sent again at once"
    assert sorted((a[1], a[2], a[3]) for a in alerts.ended) == [
        ("failed", "worker_lost", [worn_out]),
        ("unknown", "worker_lost", [started]),
    ]
    assert {a[0] for a in alerts.ended} == {tenant.slug}


def test_a_claim_younger_than_the_stale_limit_is_left_to_its_worker(
    storage: FakeStorage,
    queue: FakeQueue,
    settings: Settings,
    alerts: RecordingAlerts,
    gateway: FakeGateway,
    breaker: MemoryGatewayBreaker,
    broker: FakeBrokerMarker,
    clock: FakeClock,
    swept: Sweep,
    new_tenant: NewTenant,
) -> None:
    tenant = new_tenant()
    storage.add_customers(tenant, due_customers(2))
    ids = swept(tenant)
    claimed_by_a_lost_worker(storage, tenant, ids, started=ids[:1])
    clock.advance(settings.stale_sending_seconds - 1)

    report = tick(storage, queue, settings, alerts, gateway, breaker, broker, clock)

    assert (report.requeued, report.unknown, report.failed) == (0, 0, 0)
    assert [row.status for row in storage.reminders(tenant)] == [ReminderStatus.SENDING] * 2
    assert alerts.ended == []


def test_lost_workers_rows_are_alerted_once_per_tenant_under_its_own_name(
    storage: FakeStorage,
    queue: FakeQueue,
    settings: Settings,
    alerts: RecordingAlerts,
    gateway: FakeGateway,
    breaker: MemoryGatewayBreaker,
    broker: FakeBrokerMarker,
    clock: FakeClock,
    swept: Sweep,
    new_tenant: NewTenant,
) -> None:
    tenants = [new_tenant(), new_tenant()]
    started: dict[str, list[int]] = {}
    for tenant in tenants:
        storage.add_customers(tenant, due_customers(2))
        ids = swept(tenant)
        claimed_by_a_lost_worker(storage, tenant, ids, started=ids)
        started[tenant.slug] = ids
    clock.advance(settings.stale_sending_seconds + 1)

    report = tick(storage, queue, settings, alerts, gateway, breaker, broker, clock)

    assert report.unknown == 4
    assert sorted((slug, status, sorted(ids)) for slug, status, _, ids, _ in alerts.ended) == sorted(
        (slug, "unknown", sorted(ids)) for slug, ids in started.items()
    )


def test_after_the_broker_lost_its_tasks_every_published_reminder_is_published_again(
    storage: FakeStorage,
    settings: Settings,
    alerts: RecordingAlerts,
    gateway: FakeGateway,
    breaker: MemoryGatewayBreaker,
    broker: FakeBrokerMarker,
    clock: FakeClock,
    swept: Sweep,
    new_tenant: NewTenant,
) -> None:
    tenant = new_tenant()
    storage.add_customers(tenant, due_customers(3))
    published = swept(tenant)
    broker.lose()
    restarted = FakeQueue()
    clock.advance(settings.recovery_interval_seconds)

    report = tick(storage, restarted, settings, alerts, gateway, breaker, broker, clock)

    assert (report.republished, report.released) == (3, {tenant.slug: 3})
    assert sorted(restarted.ids) == sorted(published)
    assert tick(storage, FakeQueue(), settings, alerts, gateway, breaker, broker, clock).republished == 0


def test_without_a_broker_loss_a_recently_published_reminder_is_not_published_twice(
    storage: FakeStorage,
    queue: FakeQueue,
    settings: Settings,
    alerts: RecordingAlerts,
    gateway: FakeGateway,
    breaker: MemoryGatewayBreaker,
    broker: FakeBrokerMarker,
    clock: FakeClock,
    swept: Sweep,
    new_tenant: NewTenant,
) -> None:
    tenant = new_tenant()
    storage.add_customers(tenant, due_customers(3))
    swept(tenant)
    clock.advance(settings.recovery_interval_seconds)

    report = tick(storage, queue, settings, alerts, gateway, breaker, broker, clock)

    assert (report.republished, report.released) == (0, {})
    assert len(queue.tasks) == 1


def test_an_open_breaker_is_reset_once_the_gateway_accepts_the_key_and_the_waiting_reminders_go_out(
    storage: FakeStorage,
    queue: FakeQueue,
    settings: Settings,
    alerts: RecordingAlerts,
    gateway: FakeGateway,
    breaker: MemoryGatewayBreaker,
    broker: FakeBrokerMarker,
    clock: FakeClock,
    new_tenant: NewTenant,
) -> None:
    tenant = new_tenant()
    storage.add_customers(tenant, due_customers(2))
    queue.fail(None)  # the sweep's publish fails, so the reminders wait unpublished
    sweep_tenant(storage, tenant.slug, queue, settings, now=clock.now())
    queue.recover()
    breaker.trip("401")

    report = tick(storage, queue, settings, alerts, gateway, breaker, broker, clock)

    assert (report.breaker, report.released) == ("reset", {tenant.slug: 2})
    assert not breaker.is_open() and gateway.checks == 1


def test_while_the_key_is_still_rejected_the_breaker_stays_open_and_nothing_is_released(
    storage: FakeStorage,
    queue: FakeQueue,
    settings: Settings,
    alerts: RecordingAlerts,
    breaker: MemoryGatewayBreaker,
    broker: FakeBrokerMarker,
    clock: FakeClock,
    new_tenant: NewTenant,
) -> None:
    tenant = new_tenant()
    storage.add_customers(tenant, due_customers(2))
    queue.fail(None)
    sweep_tenant(storage, tenant.slug, queue, settings, now=clock.now())
    queue.recover()
    breaker.trip("401")

    for access in (AccessCheck.REJECTED, AccessCheck.UNREACHABLE):
        report = tick(storage, queue, settings, alerts, FakeGateway(access=access), breaker, broker, clock)
        assert (report.breaker, report.released) == ("open", {})

    assert breaker.is_open() and queue.tasks == []
    assert [row.enqueued_at for row in storage.reminders(tenant)] == [None, None]


def test_a_closed_breaker_is_not_probed(
    storage: FakeStorage,
    queue: FakeQueue,
    settings: Settings,
    alerts: RecordingAlerts,
    gateway: FakeGateway,
    breaker: MemoryGatewayBreaker,
    broker: FakeBrokerMarker,
    clock: FakeClock,
) -> None:
    report = tick(storage, queue, settings, alerts, gateway, breaker, broker, clock)

    assert report.breaker == "closed" and gateway.checks == 0


def test_reminders_deferred_by_quiet_hours_are_released_when_the_window_opens_and_not_before(
    storage: FakeStorage,
    queue: FakeQueue,
    settings: Settings,
    alerts: RecordingAlerts,
    gateway: FakeGateway,
    breaker: MemoryGatewayBreaker,
    broker: FakeBrokerMarker,
    clock: FakeClock,
    new_tenant: NewTenant,
) -> None:
    evening, anytime = new_tenant(**EVENING), new_tenant()
    for tenant in (evening, anytime):
        storage.add_customers(tenant, due_customers(2))
    sweep_tenant(storage, evening.slug, queue, settings, now=clock.now())
    queue.fail(None)
    sweep_tenant(storage, anytime.slug, queue, settings, now=clock.now())
    queue.recover()

    morning = tick(storage, queue, settings, alerts, gateway, breaker, broker, clock)
    storage.update_reminders(queue.ids, status=ReminderStatus.SENT)  # a worker sent them
    clock.set(dt.datetime(2026, 3, 2, 19, 0, tzinfo=dt.UTC))  # 20:00 in Amsterdam
    at_eight = tick(storage, queue, settings, alerts, gateway, breaker, broker, clock)

    assert morning.released == {anytime.slug: 2}
    assert at_eight.released == {evening.slug: 2}
    assert [tenant_id for tenant_id, _ in queue.batches] == [anytime.id, evening.id]


def test_every_tick_delivers_the_alerts_held_back_by_the_incident_window(
    storage: FakeStorage,
    queue: FakeQueue,
    settings: Settings,
    alerts: RecordingAlerts,
    gateway: FakeGateway,
    breaker: MemoryGatewayBreaker,
    broker: FakeBrokerMarker,
    clock: FakeClock,
) -> None:
    tick(storage, queue, settings, alerts, gateway, breaker, broker, clock)
    breaker.trip("401")
    tick(storage, queue, settings, alerts, FakeGateway(access=AccessCheck.REJECTED), breaker, broker, clock)

    assert alerts.flushes == 2


def test_release_publishes_within_the_tenants_bound_and_also_reminders_whose_task_was_lost(
    storage: FakeStorage, queue: FakeQueue, clock: FakeClock, new_tenant: NewTenant
) -> None:
    settings = make_settings(send_batch_size=2, max_batches_per_tenant=1)
    lost, waiting = new_tenant(), new_tenant()
    storage.add_customers(lost, due_customers(1))
    storage.add_customers(waiting, due_customers(3))
    sweep_tenant(storage, lost.slug, FakeQueue(), settings, now=clock.now())  # published, then lost
    clock.advance(settings.requeue_after_seconds + 1)
    queue.fail(None)
    sweep_tenant(storage, waiting.slug, queue, settings, now=clock.now())
    queue.recover()

    released = release_deferred(storage, queue, settings, now=clock.now())

    assert released == {lost.slug: 1, waiting.slug: 2}
    assert len(storage.reminders(waiting)) == 3


def test_release_stops_at_a_broker_failure_and_the_next_run_publishes_every_tenant(
    storage: FakeStorage, queue: FakeQueue, settings: Settings, clock: FakeClock, new_tenant: NewTenant
) -> None:
    tenants = [new_tenant(), new_tenant()]
    queue.fail(None)
    for tenant in tenants:
        storage.add_customers(tenant, due_customers(1))
        sweep_tenant(storage, tenant.slug, queue, settings, now=clock.now())

    assert release_deferred(storage, queue, settings, now=clock.now()) == {sorted(t.slug for t in tenants)[0]: 0}
    assert len(queue.refused) == 3, "the second tenant is not tried while the broker is down"
    queue.recover()
    assert release_deferred(storage, queue, settings, now=clock.now()) == {t.slug: 1 for t in tenants}
