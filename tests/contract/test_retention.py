"""Ledger retention (``LedgerMaintenance.prune``) on the fake and on SQL: only closed rows older than the
cut-off of a past cycle, or of a removed subscription or customer, ever go; a current expiry's rows
stay whatever their age, so the window rule never sends a reminder twice."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from tenant_worker.domain.records import Tenant
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


def renew(storage: StorageUnderTest, tenant: Tenant, customers: range) -> None:
    """The customers ``<slug>-<i>`` renew: their subscription's expiry moves a year on."""
    import_customers(storage, tenant, [customer(f"{tenant.slug}-{i}", RENEWED) for i in customers])


def test_a_current_expiry_keeps_its_rows_however_old_and_a_past_cycle_loses_them(storage: StorageUnderTest) -> None:
    tenant, ids = closed_long_ago(storage, 4)
    with storage.uow() as tx:
        assert tx.maintenance.count_prunable(CUTOFF) == 0
        assert tx.maintenance.prune(CUTOFF, 100) == 0  # every row is of its subscription's current expiry
    renew(storage, tenant, range(3))
    with storage.uow() as tx:
        assert tx.maintenance.count_prunable(CUTOFF) == 3
        assert tx.maintenance.count_prunable(LONG_AGO) == 0  # strictly older than the cut-off
        assert tx.maintenance.prune(CUTOFF, 100) == 3
        assert tx.maintenance.prune(CUTOFF, 100) == 0
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
        assert tx.maintenance.prune(CUTOFF, 100) == 3
    assert sorted(rows(storage, tenant)) == ids[:3]


def test_removed_subscriptions_and_customers_lose_their_old_rows_even_of_their_last_expiry(
    storage: StorageUnderTest,
) -> None:
    tenant, ids = closed_long_ago(storage, 3)
    before = rows(storage, tenant)
    storage.mark_removed("subscriptions", [before[ids[0]].subscription_id], now())
    second_subscription = before[ids[1]].subscription_id
    storage.mark_removed("customers", [_customer_of(storage, tenant, second_subscription)], now())
    with storage.uow() as tx:
        assert tx.maintenance.prune(CUTOFF, 100) == 2
    assert sorted(rows(storage, tenant)) == ids[2:]


def test_batches_take_the_oldest_rows_of_every_tenant_first(storage: StorageUnderTest) -> None:
    first, first_ids = closed_long_ago(storage, 3)
    second, second_ids = closed_long_ago(storage, 2)
    storage.set_reminders(second_ids[:1], updated_at=LONG_AGO - dt.timedelta(days=1))
    renew(storage, first, range(3))
    renew(storage, second, range(2))
    with storage.uow() as tx:
        assert tx.maintenance.prune(CUTOFF, 2) == 2
        assert tx.maintenance.prune(CUTOFF, 0) == 0
    assert sorted(rows(storage, first)) == first_ids[1:]
    assert sorted(rows(storage, second)) == second_ids[1:]
    with storage.uow() as tx:
        assert tx.maintenance.prune(CUTOFF, 2) == 2
        assert tx.maintenance.prune(CUTOFF, 2) == 1
        assert tx.maintenance.prune(CUTOFF, 2) == 0


def test_a_pruned_past_cycle_does_not_reopen_the_current_one(storage: StorageUnderTest) -> None:
    """After the prune, a sweep of the renewed expiry claims its windows afresh, once each."""
    tenant, _ = closed_long_ago(storage, 2)
    renew(storage, tenant, range(2))
    with storage.uow() as tx:
        assert tx.maintenance.prune(CUTOFF, 100) == 2
    day = RENEWED - dt.timedelta(days=3)
    with storage.uow() as tx:
        assert len(tx.ledger(tenant.id).claim_due_reminders(day, (5, 3, 1))) == 2
    with storage.uow() as tx:
        assert tx.ledger(tenant.id).claim_due_reminders(day, (5, 3, 1)) == []
        assert tx.maintenance.prune(now() + dt.timedelta(days=1), 100) == 0  # the new rows are open


def _customer_of(storage: StorageUnderTest, tenant: Tenant, subscription_id: int) -> int:
    """The customer id of a subscription (the ports expose it nowhere a test needs)."""
    if storage.fake is not None:
        return storage.fake.tables.subscriptions[subscription_id].customer_id
    assert storage.sessions is not None
    with storage.sessions() as session:
        return int(
            session.scalar(text("SELECT customer_id FROM subscriptions WHERE id = :id"), {"id": subscription_id})
        )
