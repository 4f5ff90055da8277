"""Moving a tenant to another queue and choosing the queues a worker consumes (``services.sharding``) on
the in-memory fakes: the tenant's live work follows it, the route caches hear of it first, the backlog
stays within the tenant's bound, and a broker failure is reported rather than lost."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest

from tenant_worker import constants
from tenant_worker.config import Settings, load_settings
from tenant_worker.domain.model import ReminderStatus, ValidationError
from tenant_worker.domain.records import CustomerRecord, Tenant
from tenant_worker.services.sharding import QueueInfo, known_queues, move_tenant, target_queue, worker_queues
from tests.fakes import FakeStorage
from tests.fakes.clock import DEFAULT_START

NOW = DEFAULT_START  # the clock fixture's start (conftest.py)
TODAY = dt.date(2026, 3, 2)
DEDICATED = constants.DEDICATED_QUEUE_PREFIX + "acme"


@pytest.fixture
def settings() -> Settings:
    # Batches of 2, at most 3 batches of a tenant queued or running: small enough to count by hand.
    return dataclasses.replace(
        load_settings({}), send_batch_size=2, max_batches_per_tenant=3, requeue_after_seconds=600
    )


def stored_tenant(storage: FakeStorage, slug: str) -> Tenant:
    with storage() as tx:
        return tx.catalog.find_tenant(slug)


def reassign(storage: FakeStorage, slug: str, queue_name: str) -> Tenant:
    with storage() as tx:
        tenant = dataclasses.replace(tx.catalog.find_tenant(slug), queue=queue_name)
        tx.catalog.save_tenant(tenant)
    return tenant


class Backlog:
    """A tenant mid-way through its sends: 3 reminders published just now (their tasks are live on the
    old queue), 2 published 20 minutes ago (their tasks were lost), 1 being sent, 4 never published."""

    def __init__(self, storage: FakeStorage) -> None:
        self.tenant = storage.add_tenant("acme", shard_count=16)
        storage.add_customers(
            self.tenant,
            [
                CustomerRecord(
                    f"c-{n}", f"Customer {n}", f"+3161234{n:04d}", "Fiber", Decimal(10), "EUR", TODAY + dt.timedelta(3)
                )
                for n in range(10)
            ],
        )
        with storage() as tx:
            ledger = tx.ledger(self.tenant.id)
            ids = [reminder_id for reminder_id, _status in ledger.claim_due_reminders(TODAY, self.tenant.windows)]
            ledger.mark_enqueued(ids[:5])
            ledger.start_sending(ids[5:6])
        storage.age_reminders(dt.timedelta(minutes=20), ids[3:5])
        self.live, self.lost, self.sending, self.waiting = ids[:3], ids[3:5], ids[5], ids[6:]


# move_tenant -------------------------------------------------------------------------------------------


def test_a_move_commits_the_new_queue_and_announces_it_before_publishing_anything(
    storage, queue, settings, clock
) -> None:
    Backlog(storage)
    heard: list[tuple[str, int]] = []

    def announce() -> None:
        heard.append((stored_tenant(storage, "acme").queue, len(queue.tasks)))

    report = move_tenant(storage, "acme", DEDICATED, queue, settings, announce, now=clock.now())

    assert heard == [(DEDICATED, 0)]
    assert (report.tenant, report.new_queue) == ("acme", DEDICATED)
    assert report.old_queue.startswith(constants.SHARD_QUEUE_PREFIX)
    assert stored_tenant(storage, "acme").queue == DEDICATED


def test_live_pending_work_is_republished_and_the_backlog_topped_up_within_the_bound(
    storage, queue, settings, clock
) -> None:
    work = Backlog(storage)
    tenant_id = work.tenant.id

    report = move_tenant(storage, "acme", DEDICATED, queue, settings, lambda: None, now=clock.now())

    assert (report.republished, report.published, report.backlog, report.error) == (3, 2, 4, None)
    # The live reminders first, in batches; then the oldest waiting ones, as far as the bound allows:
    # 1 sending + 3 live = 2 batches in flight, so 1 more batch of 2 (the two whose task was lost).
    assert queue.batches == [(tenant_id, work.live[:2]), (tenant_id, work.live[2:]), (tenant_id, work.lost)]
    in_flight = len(queue.ids) + 1
    assert in_flight <= settings.max_batches_per_tenant * settings.send_batch_size
    assert work.sending not in queue.ids
    waiting = storage.reminders(tenant_id, ReminderStatus.PENDING)
    assert [r.id for r in waiting if r.enqueued_at is None] == work.waiting


def test_a_tenant_with_nothing_pending_moves_and_publishes_nothing(storage, queue, settings, clock) -> None:
    storage.add_tenant("acme")
    announced: list[bool] = []

    report = move_tenant(storage, "acme", DEDICATED, queue, settings, lambda: announced.append(True), now=clock.now())

    assert (report.republished, report.published, report.backlog, report.error) == (0, 0, 0, None)
    assert announced == [True]
    assert queue.tasks == []


def test_a_broker_failure_is_reported_and_the_live_work_is_left_for_the_recovery_tick(
    storage, queue, settings, clock
) -> None:
    work = Backlog(storage)
    queue.fail()

    report = move_tenant(storage, "acme", DEDICATED, queue, settings, lambda: None, now=clock.now())

    assert (report.republished, report.published) == (0, 0)
    assert report.error is not None
    assert report.error.startswith("3 pending reminders not enqueued (broker at fake://broker unavailable")
    assert report.error.endswith("the recovery tick retries")
    assert stored_tenant(storage, "acme").queue == DEDICATED  # the move itself stands
    live = [storage.reminder(reminder_id) for reminder_id in work.live]
    assert [(r.status, r.enqueued_at) for r in live] == [("pending", None)] * 3
    assert queue.tasks == []


def test_a_broker_failure_still_reports_how_many_reminders_wait_in_the_ledger(storage, queue, settings, clock) -> None:
    Backlog(storage)
    queue.fail()

    report = move_tenant(storage, "acme", DEDICATED, queue, settings, lambda: None, now=clock.now())

    assert report.backlog == 9  # 3 live (un-stamped again) + 2 lost + 4 never published; not the one sending


def test_moving_an_unknown_tenant_is_a_clear_error_and_announces_nothing(storage, queue, settings, clock) -> None:
    announced: list[bool] = []

    with pytest.raises(ValidationError, match="unknown tenant 'nobody'"):
        move_tenant(storage, "nobody", DEDICATED, queue, settings, lambda: announced.append(True), now=clock.now())

    assert (announced, queue.tasks) == ([], [])


# target_queue ------------------------------------------------------------------------------------------


def test_the_target_is_the_named_shard_or_the_tenants_dedicated_queue() -> None:
    assert target_queue("acme", 3, False, 4) == "reminders.shard.03"
    assert target_queue("acme", None, True, 4) == DEDICATED


@pytest.mark.parametrize(("shard", "dedicated"), [(None, False), (2, True)])
def test_the_target_needs_exactly_one_of_shard_or_dedicated(shard: int | None, dedicated: bool) -> None:
    with pytest.raises(ValidationError) as refused:
        target_queue("acme", shard, dedicated, 4)

    assert refused.value.problems == ["give exactly one of --shard N or --dedicated"]


def test_a_shard_beyond_the_shard_count_is_refused_naming_the_count() -> None:
    with pytest.raises(ValidationError) as refused:
        target_queue("acme", 4, False, 4)

    assert refused.value.problems == ["shard 4 does not exist: SHARD_COUNT is 4 (shards 0-3)"]


# known_queues and worker_queues ------------------------------------------------------------------------


@pytest.fixture
def assigned(storage: FakeStorage) -> dict[str, Tenant]:
    """Tenants on shard 00, on their own queue, on shard 05 (beyond SHARD_COUNT=2) and on an odd queue."""
    return {
        "ann": reassign(storage, storage.add_tenant("ann").slug, "reminders.shard.00"),
        "big": storage.add_tenant("big", dedicated=True),
        "legacy": reassign(storage, storage.add_tenant("legacy").slug, "reminders.shard.05"),
        "odd": reassign(storage, storage.add_tenant("odd").slug, "custom.queue"),
    }


def test_known_queues_lists_every_shard_every_assigned_queue_and_the_control_queues(storage, assigned) -> None:
    with storage() as tx:
        infos = known_queues(tx, 2)

    assert infos == [
        QueueInfo("reminders.shard.00", "shard", ("ann",)),
        QueueInfo("reminders.shard.01", "shard"),
        QueueInfo("reminders.shard.05", "shard", ("legacy",)),
        QueueInfo("custom.queue", "other", ("odd",)),
        QueueInfo("reminders.tenant.big", "dedicated", ("big",)),
        QueueInfo(constants.CONTROL_QUEUE, "control"),
        QueueInfo(constants.DEFAULT_QUEUE, "default"),
    ]


def test_a_worker_consumes_the_shards_queues_and_dedicated_tenants_it_is_given_once_each(storage, assigned) -> None:
    with storage() as tx:
        chosen = worker_queues(tx, 4, "0-1,3", ["extra.one, reminders.shard.01", " extra.two "], ["big"])

    assert chosen == [
        "reminders.shard.00",
        "reminders.shard.01",
        "reminders.shard.03",
        "extra.one",
        "extra.two",
        "reminders.tenant.big",
    ]


def test_a_worker_given_nothing_consumes_every_known_queue(storage, assigned) -> None:
    with storage() as tx:
        chosen = worker_queues(tx, 2, None, [], [])
        every = [info.name for info in known_queues(tx, 2)]

    assert chosen == every


def test_a_worker_for_a_tenant_on_a_shared_queue_is_refused_with_a_pointer_to_tenant_move(storage, assigned) -> None:
    with storage() as tx, pytest.raises(ValidationError) as refused:
        worker_queues(tx, 4, None, [], ["ann"])

    [problem] = refused.value.problems
    assert "tenant 'ann' is on the shared queue reminders.shard.00" in problem
    assert problem.endswith("`tenant-worker tenant move ann --dedicated` first")


@pytest.mark.parametrize(
    ("shards", "queues", "tenants", "message"),
    [
        pytest.param("2-5", [], [], "shard 5 does not exist: SHARD_COUNT is 4", id="shard-beyond-the-count"),
        pytest.param("3-1", [], [], "runs backwards", id="backwards-range"),
        pytest.param(None, ["Bad Queue"], [], "queue name 'Bad Queue' must be", id="bad-queue-name"),
        pytest.param(None, [], ["nobody"], "unknown tenant 'nobody'", id="unknown-tenant"),
    ],
)
def test_a_worker_given_something_that_does_not_exist_is_refused(
    storage, assigned, shards: str | None, queues: list[str], tenants: list[str], message: str
) -> None:
    with storage() as tx, pytest.raises(ValidationError, match=message):
        worker_queues(tx, 4, shards, queues, tenants)
