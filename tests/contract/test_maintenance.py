"""The recovery tick's cross-tenant statements, on the fake and on SQL (both start empty, so every
count here is exact)."""

from __future__ import annotations

import datetime as dt

from tenant_worker.domain.records import RepairedRow
from tests.contract.conftest import StorageUnderTest, claim, now, pending, rows, token

HOUR = dt.timedelta(hours=1)
MAX_ATTEMPTS = 4


def test_a_stale_claim_becomes_unknown_if_its_request_started_else_pending_or_failed(
    storage: StorageUnderTest,
) -> None:
    tenant, ids = pending(storage, 4)
    with storage.uow() as tx:
        tx.ledger(tenant.id).stamp_unpublished(now(), 10)
    claimed_at = token(claim(storage, tenant, ids[:3]))
    with storage.uow() as tx:
        assert tx.ledger(tenant.id).mark_started(ids[:1], claimed_at) == {ids[0]}
    storage.set_reminders(ids[1:2], attempts=MAX_ATTEMPTS)
    with storage.uow() as tx:
        assert tx.maintenance.repair_stale_sending(now() - HOUR, MAX_ATTEMPTS, 100) == []  # nothing stale yet
        repaired = tx.maintenance.repair_stale_sending(now() + HOUR, MAX_ATTEMPTS, 100)
    assert sorted(repaired, key=lambda r: r.reminder_id) == [
        RepairedRow(tenant.id, ids[0], "unknown"),
        RepairedRow(tenant.id, ids[1], "failed"),
        RepairedRow(tenant.id, ids[2], "pending"),
    ]
    after = rows(storage, tenant)
    started, exhausted, retried, untouched = (after[i] for i in ids)
    assert (started.last_error, started.enqueued_at is not None) == (
        "worker lost while sending: it may have been delivered",
        True,
    )
    assert (exhausted.last_error, exhausted.enqueued_at) == ("worker lost before sending, 4 times", None)
    assert (retried.last_error, retried.enqueued_at, retried.attempts) == (
        "worker lost before sending; sending again",
        None,
        1,
    )
    assert retried.updated_at is not None and retried.updated_at > claimed_at
    assert (untouched.status, untouched.last_error) == ("pending", None)
    with storage.uow() as tx:
        assert tx.maintenance.repair_stale_sending(now() + HOUR, MAX_ATTEMPTS, 100) == []


def test_the_oldest_claims_of_every_tenant_are_repaired_first_up_to_the_limit(storage: StorageUnderTest) -> None:
    first, first_ids = pending(storage, 2)
    second, second_ids = pending(storage, 1)
    claim(storage, first, first_ids)
    claim(storage, second, second_ids)
    long_ago = dt.datetime(2020, 5, 1, tzinfo=dt.UTC)
    ages = {first_ids[0]: 3, second_ids[0]: 1, first_ids[1]: 2}
    for reminder_id, minutes in ages.items():
        storage.set_reminders([reminder_id], updated_at=long_ago + dt.timedelta(minutes=minutes))
    with storage.uow() as tx:
        oldest = tx.maintenance.repair_stale_sending(long_ago + HOUR, MAX_ATTEMPTS, 2)
    with storage.uow() as tx:
        rest = tx.maintenance.repair_stale_sending(long_ago + HOUR, MAX_ATTEMPTS, 2)
        assert tx.maintenance.repair_stale_sending(long_ago + HOUR, MAX_ATTEMPTS, 0) == []
    assert sorted(oldest, key=lambda r: r.reminder_id) == sorted(
        [RepairedRow(second.id, second_ids[0], "pending"), RepairedRow(first.id, first_ids[1], "pending")],
        key=lambda r: r.reminder_id,
    )
    assert rest == [RepairedRow(first.id, first_ids[0], "pending")]


def test_forgetting_publications_unpublishes_every_published_pending_reminder(storage: StorageUnderTest) -> None:
    first, first_ids = pending(storage, 4)
    second, second_ids = pending(storage, 1)
    with storage.uow() as tx:
        tx.ledger(first.id).stamp_unpublished(now(), 3)
        tx.ledger(second.id).stamp_unpublished(now(), 3)
    claim(storage, first, first_ids[2:3])
    with storage.uow() as tx:
        assert tx.maintenance.forget_publications() == 3
        assert tx.maintenance.forget_publications() == 0
    after = rows(storage, first)
    assert [after[i].enqueued_at is None for i in first_ids] == [True, True, False, True]
    assert rows(storage, second)[second_ids[0]].enqueued_at is None


def test_tenants_with_lost_tasks_are_those_published_before_the_cutoff_and_still_pending(
    storage: StorageUnderTest,
) -> None:
    lost, lost_ids = pending(storage, 2)
    recent, _ = pending(storage, 1)
    unpublished, _ = pending(storage, 1)
    sending, sending_ids = pending(storage, 1)
    for tenant in (lost, recent, sending):
        with storage.uow() as tx:
            tx.ledger(tenant.id).stamp_unpublished(now(), 10)
    claim(storage, sending, sending_ids)
    storage.set_reminders(lost_ids[:1], enqueued_at=now() - 2 * HOUR)
    storage.set_reminders(sending_ids, enqueued_at=now() - 2 * HOUR)
    with storage.uow() as tx:
        assert tx.maintenance.tenants_with_lost_tasks(now() - HOUR) == [lost.id]
        assert sorted(tx.maintenance.tenants_with_lost_tasks(now() + HOUR)) == [lost.id, recent.id]
        assert tx.maintenance.tenants_with_unpublished() == [unpublished.id]


def test_tenants_with_unpublished_reminders_are_listed_by_id(storage: StorageUnderTest) -> None:
    tenants = [pending(storage, count)[0] for count in (2, 1, 3)]
    with storage.uow() as tx:
        assert tx.maintenance.tenants_with_unpublished() == sorted(t.id for t in tenants)
        tx.ledger(tenants[1].id).stamp_unpublished(now(), 10)
        tx.ledger(tenants[2].id).stamp_unpublished(now(), 2)
        assert tx.maintenance.tenants_with_unpublished() == sorted([tenants[0].id, tenants[2].id])


def test_an_empty_ledger_needs_no_repair(storage: StorageUnderTest) -> None:
    with storage.uow() as tx:
        maintenance = tx.maintenance
        assert maintenance.repair_stale_sending(now() + HOUR, MAX_ATTEMPTS, 100) == []
        assert maintenance.forget_publications() == 0
        assert maintenance.tenants_with_lost_tasks(now() + HOUR) == []
        assert maintenance.tenants_with_unpublished() == []
