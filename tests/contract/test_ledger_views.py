"""The HTTP API's ledger views, on the fake and on SQL: keyset pages with filters, and per-day counts."""

from __future__ import annotations

import datetime as dt

from tenant_worker.domain.records import NO_DELIVERY_STATUS, DayCount, ReminderQuery
from tests.contract.conftest import TODAY, StorageUnderTest, pending

DAY = dt.timedelta(days=1)


def ledger_of_six(storage: StorageUnderTest) -> tuple[int, list[int]]:
    """A tenant with six reminders: one pending today; sent yesterday (delivered, failed, no report);
    failed two days ago; skipped yesterday. Returns the tenant id and the ids, oldest first."""
    tenant, ids = pending(storage, 6)
    storage.set_reminders(ids[2:3], status="sent", local_date=TODAY - DAY, delivery_status="delivered")
    storage.set_reminders(ids[3:4], status="sent", local_date=TODAY - DAY, delivery_status="delivery_failed")
    storage.set_reminders(ids[4:5], status="sent", local_date=TODAY - DAY)
    storage.set_reminders(ids[5:6], status="failed", local_date=TODAY - 2 * DAY)
    storage.set_reminders(ids[1:2], status="skipped", skip_reason="opted_out", local_date=TODAY - DAY)
    return tenant.id, ids


def page(storage: StorageUnderTest, tenant_id: int, **query: object) -> list[int]:
    with storage.uow() as tx:
        return [row.id for row in tx.ledger(tenant_id).page_reminders(ReminderQuery(**query))]  # type: ignore[arg-type]


def test_pages_come_newest_first_and_continue_below_the_cursor(storage: StorageUnderTest) -> None:
    tenant_id, ids = ledger_of_six(storage)
    newest = sorted(ids, reverse=True)
    assert page(storage, tenant_id, limit=4) == newest[:4]
    assert page(storage, tenant_id, limit=4, before_id=newest[3]) == newest[4:]
    assert page(storage, tenant_id, limit=4, before_id=newest[-1]) == []
    assert page(storage, tenant_id, limit=0) == []


def test_filters_combine_and_a_missing_report_is_asked_for_by_name(storage: StorageUnderTest) -> None:
    tenant_id, ids = ledger_of_six(storage)
    assert page(storage, tenant_id, status="sent") == [ids[4], ids[3], ids[2]]
    assert page(storage, tenant_id, delivery_status="delivered") == [ids[2]]
    assert page(storage, tenant_id, status="sent", delivery_status=NO_DELIVERY_STATUS) == [ids[4]]
    assert page(storage, tenant_id, since=TODAY - DAY, until=TODAY - DAY) == [ids[4], ids[3], ids[2], ids[1]]
    assert page(storage, tenant_id, until=TODAY - 2 * DAY) == [ids[5]]
    assert page(storage, tenant_id, status="pending", since=TODAY) == [ids[0]]
    assert page(storage, tenant_id, status="sent", before_id=ids[4], limit=1) == [ids[3]]


def test_a_listing_by_subscription_sees_only_those_subscriptions(storage: StorageUnderTest) -> None:
    tenant_id, ids = ledger_of_six(storage)
    with storage.uow() as tx:
        subscription = {row.id: row.subscription_id for row in tx.ledger(tenant_id).page_reminders(ReminderQuery())}
    wanted = (subscription[ids[2]], subscription[ids[5]])
    assert page(storage, tenant_id, subscription_ids=wanted) == [ids[5], ids[2]]
    assert page(storage, tenant_id, subscription_ids=wanted, status="failed") == [ids[5]]
    assert page(storage, tenant_id, subscription_ids=()) == []


def test_another_tenants_rows_are_never_listed_nor_counted(storage: StorageUnderTest) -> None:
    tenant_id, _ = ledger_of_six(storage)
    other, other_ids = pending(storage, 2)
    assert page(storage, other.id) == sorted(other_ids, reverse=True)
    with storage.uow() as tx:
        assert sum(c.count for c in tx.ledger(tenant_id).count_by_day(TODAY - 9 * DAY, TODAY)) == 6
        assert tx.ledger(other.id).count_by_day(TODAY - 9 * DAY, TODAY) == [DayCount(TODAY, "pending", None, 2)]


def test_counts_per_day_status_and_delivery_status_within_the_range(storage: StorageUnderTest) -> None:
    tenant_id, _ = ledger_of_six(storage)
    with storage.uow() as tx:
        ledger = tx.ledger(tenant_id)
        counts = ledger.count_by_day(TODAY - DAY, TODAY)
        assert ledger.count_by_day(TODAY + DAY, TODAY + 9 * DAY) == []
    assert sorted(counts, key=lambda c: (c.local_date, c.status, c.delivery_status or "")) == [
        DayCount(TODAY - DAY, "sent", None, 1),
        DayCount(TODAY - DAY, "sent", "delivered", 1),
        DayCount(TODAY - DAY, "sent", "delivery_failed", 1),
        DayCount(TODAY - DAY, "skipped", None, 1),
        DayCount(TODAY, "pending", None, 1),
    ]
