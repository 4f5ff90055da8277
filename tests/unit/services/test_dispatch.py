"""Publishing a tenant's send work within its bound of batches, on fakes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from tenant_worker.config import Settings
from tenant_worker.domain.localtime import SendingWindow
from tenant_worker.domain.model import ReminderStatus
from tenant_worker.domain.records import Tenant
from tenant_worker.services.dispatch import batches_allowed, mark_unpublished, publish_next_batches
from tenant_worker.services.quiet_hours import release_deferred
from tenant_worker.services.sweep import sweep_tenant
from tests.fakes import FakeClock, FakeQueue, FakeStorage
from tests.unit.services.conftest import NewTenant, due_customers, make_settings

BOUND = make_settings(send_batch_size=2, max_batches_per_tenant=2)
QUIET_NOW = {"sending_window": SendingWindow(dt.time(20), dt.time(21)), "send_time": dt.time(20)}


def waiting_tenant(storage: FakeStorage, clock: FakeClock, make: Callable[..., Tenant], count: int) -> Tenant:
    """A tenant with ``count`` claimed reminders that no task carries yet (swept in quiet hours)."""
    tenant = make(**QUIET_NOW)
    storage.add_customers(tenant, due_customers(count))
    assert sweep_tenant(storage, tenant.slug, FakeQueue(), BOUND, now=clock.now()).deferred == count
    return tenant


@pytest.mark.parametrize(
    ("outstanding", "allowed"),
    [(0, 2), (1, 1), (2, 1), (3, 0), (4, 0), (9, 0)],
)
def test_a_partial_batch_in_flight_takes_a_whole_slot(outstanding: int, allowed: int) -> None:
    assert batches_allowed(outstanding, batch_size=2, max_batches=2) == allowed


def test_publishing_takes_the_oldest_waiting_reminders_up_to_the_tenants_bound_of_batches(
    storage: FakeStorage, queue: FakeQueue, clock: FakeClock, new_tenant: NewTenant
) -> None:
    tenant = waiting_tenant(storage, clock, new_tenant, 7)
    ids = [row.id for row in storage.reminders(tenant)]

    report = publish_next_batches(storage, tenant.id, queue, BOUND, now=clock.now())

    assert report.published == ids[:4]
    assert (report.backlog, report.not_published, report.error) == (3, 0, None)
    assert queue.batches == [(tenant.id, ids[:2]), (tenant.id, ids[2:4])]


def test_nothing_more_is_published_while_the_tenants_batches_are_in_flight(
    storage: FakeStorage, queue: FakeQueue, clock: FakeClock, new_tenant: NewTenant
) -> None:
    tenant = waiting_tenant(storage, clock, new_tenant, 7)
    publish_next_batches(storage, tenant.id, queue, BOUND, now=clock.now())

    again = publish_next_batches(storage, tenant.id, queue, BOUND, now=clock.now())

    assert (again.published, again.backlog) == ([], 3)
    assert len(queue.tasks) == 2


def test_a_finished_batch_makes_room_for_exactly_one_more(
    storage: FakeStorage, queue: FakeQueue, clock: FakeClock, new_tenant: NewTenant
) -> None:
    tenant = waiting_tenant(storage, clock, new_tenant, 7)
    publish_next_batches(storage, tenant.id, queue, BOUND, now=clock.now())
    storage.update_reminders(queue.tasks[0].reminder_ids, status=ReminderStatus.SENT)

    more = publish_next_batches(storage, tenant.id, queue, BOUND, now=clock.now())

    ids = [row.id for row in storage.reminders(tenant)]
    assert (more.published, more.backlog) == (ids[4:6], 1)


def test_another_tenants_batches_do_not_count_against_the_bound(
    storage: FakeStorage, queue: FakeQueue, clock: FakeClock, new_tenant: NewTenant
) -> None:
    big = waiting_tenant(storage, clock, new_tenant, 7)
    small = waiting_tenant(storage, clock, new_tenant, 1)
    publish_next_batches(storage, big.id, queue, BOUND, now=clock.now())

    report = publish_next_batches(storage, small.id, queue, BOUND, now=clock.now())

    assert report.published == [row.id for row in storage.reminders(small)]


def test_a_refused_batch_and_the_ones_after_it_are_left_for_the_next_top_up(
    storage: FakeStorage, queue: FakeQueue, clock: FakeClock, new_tenant: NewTenant
) -> None:
    tenant = waiting_tenant(storage, clock, new_tenant, 4)
    queue.fail(1)

    report = publish_next_batches(storage, tenant.id, queue, BOUND, now=clock.now())

    assert (report.published, report.not_published, report.backlog) == ([], 4, 4)
    assert report.error is not None and "not enqueued" in report.error
    assert [row.enqueued_at for row in storage.reminders(tenant)] == [None] * 4
    retried = publish_next_batches(storage, tenant.id, queue, BOUND, now=clock.now())
    assert len(retried.published) == 4


def test_reminders_marked_unpublished_are_released_by_the_next_recovery_tick(
    storage: FakeStorage, queue: FakeQueue, settings: Settings, clock: FakeClock, new_tenant: NewTenant
) -> None:
    tenant = new_tenant()
    storage.add_customers(tenant, due_customers(3))
    sweep_tenant(storage, tenant.slug, queue, settings, now=clock.now())
    refused = queue.ids[:2]

    mark_unpublished(storage, tenant.id, refused)

    assert [row.id for row in storage.reminders(tenant) if row.enqueued_at is None] == sorted(refused)
    assert release_deferred(storage, queue, settings, now=clock.now()) == {tenant.slug: 2}
    assert sorted(queue.tasks[-1].reminder_ids) == sorted(refused)
