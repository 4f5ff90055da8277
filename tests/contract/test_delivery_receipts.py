"""The status-report and reply statements (``DeliveryReceipts``) on the fake and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from tenant_worker.domain.delivery import DeliveryReport
from tenant_worker.domain.records import ReminderView
from tests.conftest import customer
from tests.contract.conftest import (
    SHARDS,
    TODAY,
    StorageUnderTest,
    import_customers,
    new_tenant,
    pending,
    rows,
    tenant_spec,
)

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def sent(storage: StorageUnderTest, count: int = 1) -> tuple[int, list[int]]:
    """A tenant with ``count`` reminders sent as MessageBird message ``mb-<id>``; its id and theirs."""
    tenant, ids = pending(storage, count)
    for reminder_id in ids:
        storage.set_reminders([reminder_id], status="sent", provider_message_id=f"mb-{reminder_id}", sent_at=T0)
    return tenant.id, ids


def report(reminder_id: int, status: str, seconds: int = 0, **extra: object) -> DeliveryReport:
    return DeliveryReport(f"mb-{reminder_id}", reminder_id, status, T0 + dt.timedelta(seconds=seconds), **extra)  # type: ignore[arg-type]


def record(storage: StorageUnderTest, *reports: DeliveryReport) -> list[int]:
    with storage.uow() as tx:
        return [recorded.report.reminder_id for recorded in tx.receipts.record_reports(reports)]


def view(storage: StorageUnderTest, tenant_id: int, reminder_id: int) -> ReminderView:
    with storage.uow() as tx:
        (found,) = [r for r in tx.ledger(tenant_id).list_reminders() if r.id == reminder_id]
    return found


def test_a_report_records_status_time_reason_and_error_code(storage: StorageUnderTest) -> None:
    tenant_id, (rid,) = sent(storage)
    failed = report(rid, "delivery_failed", 5, reason="unknown subscriber", error_code=1)
    with storage.uow() as tx:
        (recorded,) = tx.receipts.record_reports([failed])
    assert (recorded.tenant_id, recorded.report) == (tenant_id, failed)
    got = view(storage, tenant_id, rid)
    assert (got.delivery_status, got.delivery_status_at) == ("delivery_failed", T0 + dt.timedelta(seconds=5))
    assert (got.delivery_reason, got.delivery_error_code) == ("unknown subscriber", 1)
    assert got.status == "sent"


def test_a_duplicate_report_changes_nothing(storage: StorageUnderTest) -> None:
    _, (rid,) = sent(storage)
    assert record(storage, report(rid, "delivered", 3)) == [rid]
    assert record(storage, report(rid, "delivered", 3)) == []


def test_a_late_buffered_never_overwrites_delivered(storage: StorageUnderTest) -> None:
    tenant_id, (rid,) = sent(storage)
    record(storage, report(rid, "delivered", 2))
    assert record(storage, report(rid, "buffered", 1)) == []
    assert record(storage, report(rid, "buffered", 9)) == []  # even one stamped later: a lower rank
    assert view(storage, tenant_id, rid).delivery_status == "delivered"


def test_a_higher_status_replaces_a_lower_one_and_a_later_one_of_equal_rank_wins(storage: StorageUnderTest) -> None:
    tenant_id, (rid,) = sent(storage)
    assert record(storage, report(rid, "buffered", 1)) == [rid]
    assert record(storage, report(rid, "delivery_failed", 0)) == [rid]  # final beats buffered, whatever the clock
    assert record(storage, report(rid, "delivered", 4)) == [rid]
    assert record(storage, report(rid, "delivery_failed", 3)) == []
    assert view(storage, tenant_id, rid).delivery_status == "delivered"


def test_one_batch_keeps_the_most_advanced_report_of_each_reminder(storage: StorageUnderTest) -> None:
    tenant_id, (first, second) = sent(storage, 2)
    batch = [report(first, "delivered", 2), report(first, "buffered", 1), report(second, "buffered", 1)]
    assert sorted(record(storage, *batch)) == [first, second]
    assert view(storage, tenant_id, first).delivery_status == "delivered"
    assert view(storage, tenant_id, second).delivery_status == "buffered"


def test_a_reference_with_another_messages_id_touches_nothing(storage: StorageUnderTest) -> None:
    victim_tenant, (victim,) = sent(storage)
    _, (own,) = sent(storage)
    forged = DeliveryReport(f"mb-{own}", victim, "delivery_failed", T0)
    unknown = DeliveryReport("mb-nope", 10**12, "delivered", T0)
    assert record(storage, forged, unknown) == []
    assert view(storage, victim_tenant, victim).delivery_status is None


def test_tenants_are_found_by_their_numeric_originator(storage: StorageUnderTest) -> None:
    with storage.uow() as tx:
        numeric = tx.catalog.create_tenant(replace(tenant_spec(), originator="+3197010203"), SHARDS)
    new_tenant(storage)  # originator AcmeFiber
    with storage.uow() as tx:
        assert tx.receipts.tenants_for_number("3197010203") == [numeric.slug]
        assert tx.receipts.tenants_for_number("AcmeFiber") == []
        assert tx.receipts.tenants_for_number("3197010204") == []


def test_customers_are_found_by_phone_within_their_tenant(storage: StorageUnderTest) -> None:
    tenant, other = new_tenant(storage), new_tenant(storage)
    due = TODAY + dt.timedelta(days=3)
    import_customers(storage, tenant, [customer("a", due, "+31612340001"), customer("b", due, "+31612340002")])
    import_customers(storage, other, [customer("x", due, "+31612340001")])
    with storage.uow() as tx:
        assert tx.receipts.customers_with_phone(tenant.id, "+31612340001") == ["a"]
        assert tx.receipts.customers_with_phone(other.id, "+31612340001") == ["x"]


def test_opting_out_records_when_and_opting_in_clears_it(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage)
    import_customers(storage, tenant, [customer("a", TODAY + dt.timedelta(days=3))])
    with storage.uow() as tx:
        found = tx.catalog.find_customer(tenant.id, "a")
        assert found is not None and found.opted_out_at is None
        assert tx.catalog.set_opted_out(tenant.id, found.id, True)
    with storage.uow() as tx:
        opted = tx.catalog.find_customer(tenant.id, "a")
        assert opted is not None and opted.opted_out_at is not None
        tx.catalog.set_opted_out(tenant.id, opted.id, False)
    with storage.uow() as tx:
        back = tx.catalog.find_customer(tenant.id, "a")
        assert back is not None and back.opted_out_at is None
    assert rows(storage, tenant) == {}
