"""The ledger's claim: which reminders a sweep records on a tenant-local date (``domain.windows.due_window``),
with skip reasons, never twice, on the fake and on SQL."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from tenant_worker.domain.records import DueReminder, Tenant
from tenant_worker.domain.windows import due_window
from tests.conftest import customer
from tests.contract.conftest import TODAY, StorageUnderTest, import_customers, new_tenant, numberless, rows

WINDOWS = (5, 3, 1)


def claim_on(storage: StorageUnderTest, tenant: Tenant, day: dt.date, windows: tuple[int, ...] = WINDOWS) -> list[int]:
    """Claim ``day``; the window of each row created, by subscription order."""
    with storage.uow() as tx:
        ledger = tx.ledger(tenant.id)
        claimed = dict(ledger.claim_due_reminders(day, windows))
        created = [row for row in ledger.list_reminders() if row.id in claimed]
    return [row.window_days for row in sorted(created, key=lambda row: row.subscription_id)]


@pytest.mark.parametrize("windows", [(5, 3, 1), (10, 2), (1,)])
def test_a_claim_records_the_window_the_rule_picks_for_every_expiry(
    storage: StorageUnderTest, windows: tuple[int, ...]
) -> None:
    tenant = new_tenant(storage)
    offsets = range(-1, 13)
    import_customers(storage, tenant, [customer(f"o{days}", TODAY + dt.timedelta(days=days)) for days in offsets])
    with storage.uow() as tx:
        claimed = tx.ledger(tenant.id).claim_due_reminders(TODAY, windows)
    assert {status for _, status in claimed} <= {"pending"}
    expected = {
        TODAY + dt.timedelta(days=days): due_window(TODAY, TODAY + dt.timedelta(days=days), windows, ())
        for days in offsets
    }
    recorded = rows(storage, tenant).values()
    assert {row.expires_on: row.window_days for row in recorded} == {
        day: window for day, window in expected.items() if window is not None
    }
    assert sorted(row.id for row in recorded) == sorted(reminder_id for reminder_id, _ in claimed)
    for row in recorded:
        assert (row.local_date, row.status, row.attempts, row.enqueued_at, row.skip_reason) == (
            TODAY,
            "pending",
            0,
            None,
            None,
        )
        assert row.created_at is not None and row.updated_at is not None


def test_a_second_claim_on_the_same_day_creates_nothing(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage)
    import_customers(storage, tenant, [customer(f"s{i}", TODAY + dt.timedelta(days=i)) for i in (1, 3, 5)])
    assert claim_on(storage, tenant, TODAY) == [1, 3, 5]
    assert claim_on(storage, tenant, TODAY) == []
    with storage.uow() as tx:
        assert tx.ledger(tenant.id).preview_due_reminders(TODAY, WINDOWS) == []
        assert tx.ledger(tenant.id).count_status("pending") == 3


def test_each_window_is_claimed_once_in_its_turn_and_never_an_earlier_one_after_a_later(
    storage: StorageUnderTest,
) -> None:
    tenant = new_tenant(storage)
    expires = TODAY + dt.timedelta(days=5)
    import_customers(storage, tenant, [customer("daily", expires)])
    assert [claim_on(storage, tenant, expires - dt.timedelta(days=d)) for d in (5, 4, 3, 2, 1, 0)] == [
        [5],
        [],
        [3],
        [],
        [1],
        [],
    ]
    late = new_tenant(storage)
    import_customers(storage, late, [customer("late", expires)])
    assert claim_on(storage, late, expires - dt.timedelta(days=2)) == [3]  # the 5-day sweep was missed: late, once
    assert claim_on(storage, late, expires - dt.timedelta(days=5)) == []  # a replay never goes back to 5
    assert claim_on(storage, late, expires - dt.timedelta(days=1)) == [1]


def test_a_renewal_starts_a_new_cycle_of_reminders(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage)
    record = customer("renew", TODAY + dt.timedelta(days=3))
    import_customers(storage, tenant, [record])
    assert claim_on(storage, tenant, TODAY) == [3]
    import_customers(storage, tenant, [replace(record, expires_on=TODAY + dt.timedelta(days=2))])
    assert claim_on(storage, tenant, TODAY) == [3]
    with storage.uow() as tx:
        assert tx.ledger(tenant.id).count_status("pending") == 2


def test_inactive_opted_out_and_numberless_customers_get_a_skipped_row_with_the_first_reason(
    storage: StorageUnderTest,
) -> None:
    tenant = new_tenant(storage)
    due = TODAY + dt.timedelta(days=3)
    import_customers(
        storage,
        tenant,
        [
            customer("active", due),
            customer("cancelled", due, status="cancelled", opted_out=True),
            customer("suspended", due, status="suspended"),
            customer("opted-out", due, opted_out=True),
            numberless(customer("numberless", due)),
            numberless(customer("both", due, opted_out=True)),
        ],
    )
    with storage.uow() as tx:
        ledger = tx.ledger(tenant.id)
        preview = ledger.preview_due_reminders(TODAY, WINDOWS)
        claimed = ledger.claim_due_reminders(TODAY, WINDOWS)
        listed = sorted(ledger.list_reminders(), key=lambda row: row.subscription_id)
    reasons = [None, "subscription_inactive", "subscription_inactive", "opted_out", "invalid_phone", "opted_out"]
    assert [row.skip_reason for row in listed] == reasons
    assert [row.status for row in listed] == ["pending"] + ["skipped"] * 5
    assert sorted(status for _, status in claimed) == ["pending"] + ["skipped"] * 5
    assert [d.skip_reason for d in preview] == reasons


def test_a_preview_shows_exactly_what_the_claim_records_and_writes_nothing(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage)
    records = [customer(f"p{days}", TODAY + dt.timedelta(days=days)) for days in (4, 1, 2, 9)]
    import_customers(storage, tenant, [*records, numberless(customer("x", TODAY + dt.timedelta(days=1)))])
    with storage.uow() as tx:
        preview = tx.ledger(tenant.id).preview_due_reminders(TODAY, WINDOWS)
    with storage.uow() as tx:
        assert tx.ledger(tenant.id).list_reminders() == []
        claimed = tx.ledger(tenant.id).claim_due_reminders(TODAY, WINDOWS)
        listed = tx.ledger(tenant.id).list_reminders()
    assert preview == sorted(preview, key=lambda d: d.subscription_id)
    assert preview == sorted(
        (DueReminder(r.subscription_id, r.expires_on, r.window_days, r.skip_reason) for r in listed),
        key=lambda d: d.subscription_id,
    )
    assert len(claimed) == len(preview) == 4


def test_subscription_jobs_give_the_render_data_of_the_tenants_own_subscriptions(storage: StorageUnderTest) -> None:
    tenant, other = new_tenant(storage), new_tenant(storage)
    due = TODAY + dt.timedelta(days=3)
    import_customers(storage, tenant, [customer("mine", due, phone="+31611111111", name="Ann")])
    import_customers(storage, other, [customer("theirs", due)])
    with storage.uow() as tx:
        (mine,) = tx.ledger(tenant.id).preview_due_reminders(TODAY, WINDOWS)
        (theirs,) = tx.ledger(other.id).preview_due_reminders(TODAY, WINDOWS)
        jobs = tx.ledger(tenant.id).subscription_jobs([mine.subscription_id, theirs.subscription_id])
    assert list(jobs) == [mine.subscription_id]
    job = jobs[mine.subscription_id]
    assert (job.reminder_id, job.window_days, job.attempts, job.claimed_at) == (0, 0, 0, None)
    assert (job.customer_name, job.phone, job.plan, str(job.amount), job.currency, job.expires_on) == (
        "Ann",
        "+31611111111",
        "Fiber 100",
        "29.95",
        "EUR",
        due,
    )
