"""Ledger retention (``LedgerMaintenance.prune``) on the fake and on SQL: only closed rows older than the
cut-off of a past cycle, or of a removed subscription or customer, ever go; a current expiry's rows
stay whatever their age, so the window rule never sends a reminder twice."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from tenant_worker.domain.records import PrunedBatch, Tenant
from tests.conftest import customer
from tests.contract.conftest import TODAY, StorageUnderTest, import_customers, now, pending, rows

LONG_AGO = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
CUTOFF = LONG_AGO + dt.timedelta(days=30)
RENEWED = TODAY + dt.timedelta(days=3 + 365)


def closed_long_ago(storage: StorageUnderTest, count: int, status: str = "sent") -> tuple[Tenant, list[int]]:
    """A tenant with ``count`` reminders of its customers' current expiry, closed long before the cut-off."""
    tenant, ids = pending(storage, count)
    for offset, reminder_id in enumerate(ids):
        storage.set_reminders([reminder_id], status=status, updated_at=LONG_AGO + dt.timedelta(minutes=offset))
    return tenant, ids


def prune_all(storage: StorageUnderTest, before: dt.datetime, limit: int = 100) -> int:
    """Batches of ``limit`` from the oldest row until one examines fewer; the rows deleted."""
    deleted, after = 0, None
    with storage.uow() as tx:
        while True:
            batch = tx.maintenance.prune(before, limit, after)
            deleted, after = deleted + batch.deleted, batch.last
            if batch.examined < limit:
                return deleted


def renew(storage: StorageUnderTest, tenant: Tenant, customers: range) -> None:
    """The customers ``<slug>-<i>`` renew: their subscription's expiry moves a year on."""
    import_customers(storage, tenant, [customer(f"{tenant.slug}-{i}", RENEWED) for i in customers])


def test_a_current_expiry_keeps_its_rows_however_old_and_a_past_cycle_loses_them(storage: StorageUnderTest) -> None:
    tenant, ids = closed_long_ago(storage, 4)
    with storage.uow() as tx:
        assert tx.maintenance.count_prunable(CUTOFF) == 0
        assert prune_all(storage, CUTOFF) == 0  # every row is of its subscription's current expiry
    renew(storage, tenant, range(3))
    with storage.uow() as tx:
        assert tx.maintenance.count_prunable(CUTOFF) == 3
        assert tx.maintenance.count_prunable(LONG_AGO) == 0  # strictly older than the cut-off
        assert prune_all(storage, CUTOFF) == 3
        assert prune_all(storage, CUTOFF) == 0
    assert sorted(rows(storage, tenant)) == ids[3:]


def test_open_and_recently_changed_rows_of_a_past_cycle_stay(storage: StorageUnderTest) -> None:
    tenant, ids = closed_long_ago(storage, 6)
    storage.set_reminders(ids[:1], status="pending")
    storage.set_reminders(ids[1:2], status="sending")  # claimed long ago: the recovery tick's to settle
    storage.set_reminders(ids[2:3], updated_at=now())  # closed, but changed recently (e.g. resent)
    storage.set_reminders(ids[3:4], status="unknown")
    storage.set_reminders(ids[4:5], status="failed")
    storage.set_reminders(ids[5:6], status="skipped", skip_reason="opted_out")
    renew(storage, tenant, range(6))
    with storage.uow() as tx:
        assert tx.maintenance.count_prunable(CUTOFF) == 3
        assert prune_all(storage, CUTOFF) == 3
    assert sorted(rows(storage, tenant)) == ids[:3]


def test_removed_subscriptions_and_customers_lose_their_old_rows_even_of_their_last_expiry(
    storage: StorageUnderTest,
) -> None:
    tenant, ids = closed_long_ago(storage, 3)
    before = rows(storage, tenant)
    storage.mark_removed("subscriptions", [before[ids[0]].subscription_id], now())
    second_subscription = before[ids[1]].subscription_id
    storage.mark_removed("customers", [_customer_of(storage, tenant, second_subscription)], now())
    assert prune_all(storage, CUTOFF) == 2
    assert sorted(rows(storage, tenant)) == ids[2:]


def test_batches_examine_the_oldest_rows_of_every_tenant_first_and_resume_after_the_last(
    storage: StorageUnderTest,
) -> None:
    first, first_ids = closed_long_ago(storage, 3)
    second, second_ids = closed_long_ago(storage, 2)
    storage.set_reminders(second_ids[:1], updated_at=LONG_AGO - dt.timedelta(days=1))
    renew(storage, first, range(1, 3))  # first_ids[0] stays: its customer did not renew
    renew(storage, second, range(2))
    first_rows = rows(storage, first)
    with storage.uow() as tx:
        assert tx.maintenance.prune(CUTOFF, 0) == PrunedBatch(0, 0, None)
        batch = tx.maintenance.prune(CUTOFF, 2)  # second_ids[0], then first_ids[0] (kept)
    assert batch == PrunedBatch(2, 1, (first_rows[first_ids[0]].updated_at, first_ids[0]))
    assert sorted(rows(storage, first)) == first_ids
    assert sorted(rows(storage, second)) == second_ids[1:]
    with storage.uow() as tx:
        batch = tx.maintenance.prune(CUTOFF, 2, batch.last)  # not first_ids[0] again
        assert (batch.examined, batch.deleted) == (2, 2)
        batch = tx.maintenance.prune(CUTOFF, 2, batch.last)
        assert (batch.examined, batch.deleted) == (1, 1)
        end = tx.maintenance.prune(CUTOFF, 2, batch.last)
        assert end == PrunedBatch(0, 0, None)
    assert sorted(rows(storage, first)) == first_ids[:1]
    assert rows(storage, second) == {}


def test_a_pruned_past_cycle_does_not_reopen_the_current_one(storage: StorageUnderTest) -> None:
    """After the prune, a sweep of the renewed expiry claims its windows afresh, once each."""
    tenant, _ = closed_long_ago(storage, 2)
    renew(storage, tenant, range(2))
    assert prune_all(storage, CUTOFF) == 2
    day = RENEWED - dt.timedelta(days=3)
    with storage.uow() as tx:
        assert len(tx.ledger(tenant.id).claim_due_reminders(day, (5, 3, 1))) == 2
    with storage.uow() as tx:
        assert tx.ledger(tenant.id).claim_due_reminders(day, (5, 3, 1)) == []
        assert prune_all(storage, now() + dt.timedelta(days=1)) == 0  # the new rows are open


def _customer_of(storage: StorageUnderTest, tenant: Tenant, subscription_id: int) -> int:
    """The customer id of a subscription (the ports expose it nowhere a test needs)."""
    if storage.fake is not None:
        return storage.fake.tables.subscriptions[subscription_id].customer_id
    assert storage.sessions is not None
    with storage.sessions() as session:
        return int(
            session.scalar(text("SELECT customer_id FROM subscriptions WHERE id = :id"), {"id": subscription_id})
        )
