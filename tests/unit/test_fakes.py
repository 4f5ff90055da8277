"""What the fakes add for tests and no real adapter has (so the contract suite cannot cover it): the
fake clock, injected database failures, seeding and ageing the ledger, scripted gateway answers and
a refusing queue. Unit tests of the services lean on these, so they must do what they say."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from tenant_worker.domain.backoff import RetryPolicy
from tenant_worker.domain.model import AccessCheck, OutboundSms, OutcomeKind, SendOutcome
from tenant_worker.domain.ports import EnqueueError
from tenant_worker.domain.storage import StorageUnavailable, UnitOfWork
from tenant_worker.domain.templates import validate_template
from tenant_worker.services.retrying import run_with_retry
from tests.conftest import customer
from tests.fakes import Enqueued, FakeClock, FakeGateway, FakeQueue, FakeScheduleStore, FakeStorage
from tests.fakes.storage import SEED_TEMPLATE, FailurePoint

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def test_the_fake_clock_moves_only_when_slept_or_advanced_and_both_clocks_together() -> None:
    clock = FakeClock(START)
    assert (clock.now(), clock.monotonic()) == (START, 1000.0)
    clock.sleep(2.5)
    clock.sleep(0)
    clock.sleep(-1)
    assert clock.advance(dt.timedelta(minutes=1)) == START + dt.timedelta(seconds=62.5)
    assert (clock.monotonic(), clock.sleeps, clock.slept) == (1062.5, [2.5], 2.5)
    clock.set(START + dt.timedelta(days=1))
    assert clock.now() == START + dt.timedelta(days=1)
    with pytest.raises(ValueError):
        clock.set(START)
    with pytest.raises(ValueError):
        FakeClock(dt.datetime(2026, 1, 1))  # noqa: DTZ001 - the point: naive is refused


def test_the_fake_clock_adds_up_sleeps_from_many_threads() -> None:
    clock = FakeClock(START)

    def nap() -> None:
        for _ in range(500):
            clock.sleep(0.001)

    threads = [threading.Thread(target=nap) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(clock.sleeps) == 4000
    assert clock.monotonic() == pytest.approx(1004.0)


def seeded(clock: FakeClock | None = None) -> tuple[FakeStorage, int]:
    storage = FakeStorage(clock or FakeClock(START))
    tenant = storage.add_tenant()
    storage.add_customers(tenant, [customer(f"c{i}", START.date() + dt.timedelta(days=3)) for i in range(3)])
    return storage, tenant.id


def claim_all(tx: UnitOfWork, tenant_id: int) -> list[tuple[int, str]]:
    return tx.ledger(tenant_id).claim_due_reminders(START.date(), (5, 3, 1))


@pytest.mark.parametrize("at", ["statement", "commit"])
def test_an_injected_failure_rolls_back_the_block_and_strikes_once(at: FailurePoint) -> None:
    storage, tenant_id = seeded()
    storage.fail_next(at=at)
    with pytest.raises(StorageUnavailable, match=f"injected at {at}"), storage() as tx:
        claim_all(tx, tenant_id)
    assert (storage.reminders(), storage.failures_left, storage.rollbacks) == ([], 0, 1)
    with storage() as tx:
        assert len(claim_all(tx, tenant_id)) == 3
    assert len(storage.reminders(tenant_id, "pending")) == 3


def test_a_failure_at_begin_runs_nothing_and_retries_wait_on_the_fake_clock() -> None:
    clock = FakeClock(START)
    storage, tenant_id = seeded(clock)
    storage.fail_next(2, at="begin")
    claimed = run_with_retry(
        storage, lambda tx: claim_all(tx, tenant_id), RetryPolicy(0.1, 5.0, give_up_after=30), clock, "claim"
    )
    assert len(claimed) == 3
    assert (len(clock.sleeps), storage.commits, storage.rollbacks) == (2, 3, 0)  # 2 seeding commits + the claim
    storage.fail_next(1000, at="begin")
    with pytest.raises(StorageUnavailable):
        run_with_retry(storage, lambda tx: None, RetryPolicy(0.1, 5.0, give_up_after=30), clock, "nothing")
    assert clock.slept <= 30 + 0.3  # gave up once the policy's time was spent


def test_seeded_tenants_have_no_quiet_hours_and_a_template_that_renders() -> None:
    storage = FakeStorage()
    first, second = storage.add_tenant(), storage.add_tenant("acme", windows=(7, 1), dedicated=True)
    assert (first.slug, first.sending_window.always_open, first.windows) == ("tenant-1", True, (5, 3, 1))
    assert (second.slug, second.queue, second.windows) == ("acme", "reminders.tenant.acme", (7, 1))
    validate_template(SEED_TEMPLATE)
    with storage() as tx:
        assert [t.body for t in tx.catalog.templates(first.id)] == [SEED_TEMPLATE]


def test_ageing_moves_every_timestamp_back_and_a_claim_loses_its_rows() -> None:
    clock = FakeClock(START)
    storage, tenant_id = seeded(clock)
    with storage() as tx:
        ids = [reminder_id for reminder_id, _ in claim_all(tx, tenant_id)]
        claimed_at = tx.ledger(tenant_id).start_sending(ids[:1])[0].claimed_at
    assert claimed_at == START
    storage.age_reminders(dt.timedelta(minutes=10), ids[:1])
    row = storage.reminder(ids[0])
    assert (row.created_at, row.updated_at, row.enqueued_at) == (START - dt.timedelta(minutes=10),) * 2 + (None,)
    with storage() as tx:
        assert tx.ledger(tenant_id).mark_started(ids[:1], START) == set()
        stale = tx.maintenance.repair_stale_sending(START - dt.timedelta(minutes=5), 5, 100)
    assert [(r.reminder_id, r.status) for r in stale] == [(ids[0], "pending")]
    storage.update_reminders(ids[1:2], status="failed", last_error="HTTP 422")
    assert storage.reminder(ids[1]).status == "failed"
    with pytest.raises(ValueError, match="not a reminders column"):
        storage.update_reminders(ids, phone="+31600000000")


def test_the_storage_clock_stamps_the_ledger_and_one_transaction_shares_one_instant() -> None:
    clock = FakeClock(START)
    storage, tenant_id = seeded(clock)
    with storage() as tx:
        ledger = tx.ledger(tenant_id)
        ids = [reminder_id for reminder_id, _ in claim_all(tx, tenant_id)]
        clock.advance(5)
        ledger.mark_enqueued(ids[:1])  # the adapter's own clock: now
        assert ledger.stamp_unpublished(START, 10) == ids[1:]  # PostgreSQL's now(): the transaction's start
    assert [row.enqueued_at for row in storage.reminders(tenant_id)] == [START + dt.timedelta(seconds=5), START, START]


def test_the_fake_gateway_answers_each_recipient_from_its_script_then_sends() -> None:
    gateway = FakeGateway()
    gateway.script("+31600000001", OutcomeKind.RETRY, SendOutcome(OutcomeKind.FAILED, error="HTTP 422"))
    sms = [OutboundSms(str(i), "Acme", "+31600000001", "hi") for i in (1, 2, 3)]
    outcomes = [gateway.send(s) for s in sms]
    assert [o.kind for o in outcomes] == [OutcomeKind.RETRY, OutcomeKind.FAILED, OutcomeKind.SENT]
    assert (outcomes[0].error, outcomes[1].error, outcomes[2].provider_id) == ("scripted retry", "HTTP 422", "mb-3")
    assert gateway.references == [1, 2, 3]
    assert gateway.sent_to("+31600000002") == []
    down = FakeGateway(default=OutcomeKind.UNKNOWN, access=AccessCheck.REJECTED)
    assert down.send(sms[0]).kind == OutcomeKind.UNKNOWN
    assert (down.check_access(), down.checks) == (AccessCheck.REJECTED, 1)


def test_the_fake_queue_refuses_what_it_is_told_to_and_records_the_rest() -> None:
    queue = FakeQueue()
    queue.fail(1)
    with pytest.raises(EnqueueError):
        queue.enqueue(1, [1, 2])
    queue.enqueue(1, [3], countdown=2.0, queue="reminders.shard.00")
    assert queue.tasks == [Enqueued(1, [3], 2.0, "reminders.shard.00")]
    assert (queue.ids, queue.batches, len(queue.refused)) == ([3], [(1, [3])], 1)
    queue.fail()
    with pytest.raises(EnqueueError):
        queue.enqueue(2, [4])
    queue.recover()
    queue.enqueue(2, [4])
    assert queue.ids == [3, 4]


def test_the_fake_schedule_store_moves_an_entry_on_when_beat_runs_it() -> None:
    store = FakeScheduleStore()
    store.put("acme", "Europe/Amsterdam", dt.time(10), "reminders.shard.00", True, START)
    store.ran("acme", START + dt.timedelta(hours=1))
    entry = store.get("acme")
    assert entry is not None and entry.last_run_at == START + dt.timedelta(hours=1)
    assert entry.due_at == dt.datetime(2026, 3, 3, 9, 0, tzinfo=dt.UTC)
