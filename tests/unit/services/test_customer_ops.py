"""Operations on one customer (``services.customer_ops``) on the fakes: showing, removing, opting out
and erasing a customer, with their pending reminders cancelled and everyone else's left alone."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from tenant_worker.domain.model import ValidationError
from tenant_worker.domain.records import Tenant
from tenant_worker.domain.storage import StorageUnavailable
from tenant_worker.services.customer_ops import (
    erase_customer,
    opt_out_customer,
    remove_customer,
    show_customer,
)
from tests.conftest import customer
from tests.fakes import FakeClock, FakeStorage
from tests.unit.services.conftest import TODAY, NewTenant, Send, Sweep

ADA_PHONE = "+31612345678"


@pytest.fixture
def tenant(new_tenant: NewTenant, storage: FakeStorage) -> Tenant:
    """A tenant with Ada (two reminders' worth: due in 5 days) and Bob, both due in 5 days."""
    made = new_tenant()
    due = TODAY + dt.timedelta(days=5)
    storage.add_customers(
        made, [customer("ada", due, phone=ADA_PHONE, name="Ada Lovelace"), customer("bob", due, name="Bob Bobson")]
    )
    return made


def statuses(storage: FakeStorage, tenant: Tenant) -> dict[int, tuple[str, str | None]]:
    """Each reminder's (status, skip reason), by subscription id."""
    return {row.subscription_id: (row.status, row.skip_reason) for row in storage.reminders(tenant)}


def subscription_of(storage: FakeStorage, tenant: Tenant, ref: str) -> int:
    [subscription] = show_customer(storage, tenant.slug, ref).customer.subscriptions
    return subscription.id


def start_sending(storage: FakeStorage, tenant: Tenant, subscription_id: int) -> int:
    """A send task takes the subscription's pending reminder (and holds it); its id."""
    [row] = [r for r in storage.reminders(tenant, "pending") if r.subscription_id == subscription_id]
    with storage() as tx:
        assert tx.ledger(tenant.id).start_sending([row.id])
    return row.id


def test_show_gives_the_customer_their_subscription_and_reminders(
    storage: FakeStorage, tenant: Tenant, swept: Sweep
) -> None:
    swept(tenant)
    details = show_customer(storage, tenant.slug, "ada")
    assert (details.customer.name, details.customer.phone, details.customer.opted_out) == (
        "Ada Lovelace",
        ADA_PHONE,
        False,
    )
    [subscription] = details.customer.subscriptions
    assert [(r.subscription_id, r.window_days, r.status) for r in details.reminders] == [
        (subscription.id, 5, "pending")
    ]
    data = details.as_dict()
    assert data["phone"] == ADA_PHONE and data["reminders"][0]["status"] == "pending"
    assert data["subscriptions"][0]["plan"] == "Fiber 100"


def test_an_unknown_tenant_or_customer_is_a_clear_validation_error(storage: FakeStorage, tenant: Tenant) -> None:
    with pytest.raises(ValidationError, match="unknown tenant 'nope'"):
        show_customer(storage, "nope", "ada")
    for operation in (show_customer, remove_customer, opt_out_customer):
        with pytest.raises(ValidationError, match=f"unknown customer 'zed' of tenant '{tenant.slug}'"):
            operation(storage, tenant.slug, "zed")
    with pytest.raises(ValidationError, match="unknown customer 'zed'"):
        erase_customer(storage, tenant.slug, "zed", FakeClock())


def test_removing_cancels_pending_reminders_as_removed_and_the_next_sweeps_skip_the_customer(
    storage: FakeStorage, tenant: Tenant, swept: Sweep, clock: FakeClock
) -> None:
    swept(tenant)
    ada, bob = subscription_of(storage, tenant, "ada"), subscription_of(storage, tenant, "bob")
    report = remove_customer(storage, tenant.slug, "ada")
    assert (report.changed, report.cancelled, report.sending) == (True, 1, 0)
    assert statuses(storage, tenant) == {ada: ("skipped", "removed"), bob: ("pending", None)}
    details = show_customer(storage, tenant.slug, "ada")
    assert details.customer.removed_at is not None and details.customer.subscriptions[0].removed_at is not None

    again = remove_customer(storage, tenant.slug, "ada")
    assert (again.changed, again.cancelled) == (False, 0)
    clock.advance(dt.timedelta(days=2))  # the 3-day window is due now
    swept(tenant)
    assert [r.subscription_id for r in storage.reminders(tenant) if r.window_days == 3] == [bob]


def test_a_reminder_being_sent_cannot_be_stopped_by_a_removal_and_is_reported(
    storage: FakeStorage, tenant: Tenant, swept: Sweep
) -> None:
    swept(tenant)
    taken = start_sending(storage, tenant, subscription_of(storage, tenant, "ada"))
    report = remove_customer(storage, tenant.slug, "ada")
    assert (report.changed, report.cancelled, report.sending) == (True, 0, 1)
    assert storage.reminder(taken).status == "sending"


def test_opting_out_cancels_pending_reminders_and_later_windows_are_skipped_until_opted_in(
    storage: FakeStorage, tenant: Tenant, swept: Sweep, clock: FakeClock
) -> None:
    swept(tenant)
    ada, bob = subscription_of(storage, tenant, "ada"), subscription_of(storage, tenant, "bob")
    report = opt_out_customer(storage, tenant.slug, "ada")
    assert (report.action, report.changed, report.cancelled) == ("opt-out", True, 1)
    assert statuses(storage, tenant)[ada] == ("skipped", "opted_out")
    assert opt_out_customer(storage, tenant.slug, "ada").changed is False

    clock.advance(dt.timedelta(days=2))
    swept(tenant)
    three_days = {r.subscription_id: (r.status, r.skip_reason) for r in storage.reminders(tenant) if r.window_days == 3}
    assert three_days == {ada: ("skipped", "opted_out"), bob: ("pending", None)}

    back = opt_out_customer(storage, tenant.slug, "ada", opted_out=False)
    assert (back.action, back.changed, back.cancelled) == ("opt-in", True, 0)
    clock.advance(dt.timedelta(days=2))
    swept(tenant)
    one_day = {r.subscription_id: r.status for r in storage.reminders(tenant) if r.window_days == 1}
    assert one_day == {ada: "pending", bob: "pending"}


def _text_values(storage: FakeStorage) -> set[str]:
    """Every text value in the fake database's customers, subscriptions and reminders."""
    values: set[str] = set()
    for table in (storage.tables.customers, storage.tables.subscriptions, storage.tables.reminders):
        for row in table.values():
            values |= {value for value in dataclasses.astuple(row) if isinstance(value, str)}
    return values


def test_erasing_leaves_no_name_phone_or_text_and_keeps_anonymous_counts(
    storage: FakeStorage, tenant: Tenant, swept: Sweep, send: Send, clock: FakeClock
) -> None:
    send(tenant, swept(tenant))
    ada = subscription_of(storage, tenant, "ada")
    [sent] = [r for r in storage.reminders(tenant) if r.subscription_id == ada]
    assert sent.status == "sent" and "Ada Lovelace" in (sent.body or "") and sent.provider_message_id
    clock.advance(dt.timedelta(days=2))
    swept(tenant)  # a pending 3-day reminder too

    report = erase_customer(storage, tenant.slug, "ada", clock, token=lambda: "erased-x")
    assert (report.erased, report.subscriptions, report.reminders, report.cancelled) == (True, 1, 2, 1)
    assert report.provider_message_ids == [sent.provider_message_id]
    values = _text_values(storage)
    for secret in ("Ada Lovelace", ADA_PHONE, "ada", sent.body, sent.provider_message_id):
        assert not any(secret in value for value in values if value), secret
    assert any("Bob Bobson" in value for value in values)  # Bob is untouched
    mine = [r for r in storage.reminders(tenant) if r.subscription_id == ada]
    assert [(r.window_days, r.status, r.skip_reason, r.sent_at is not None) for r in mine] == [
        (5, "sent", None, True),
        (3, "skipped", "removed", False),
    ]
    with pytest.raises(ValidationError, match="unknown customer 'ada'"):
        show_customer(storage, tenant.slug, "ada")
    erased = show_customer(storage, tenant.slug, "erased-x").customer
    assert erased.erased_at is not None and erased.removed_at is not None


def test_erasure_waits_for_a_send_in_flight_and_then_erases(storage: FakeStorage, tenant: Tenant, swept: Sweep) -> None:
    swept(tenant)
    taken = start_sending(storage, tenant, subscription_of(storage, tenant, "ada"))

    class SendFinishesWhileWaiting(FakeClock):
        def sleep(self, seconds: float) -> None:
            super().sleep(seconds)
            storage.update_reminders([taken], status="sent", body="Hi Ada Lovelace", provider_message_id="mb-late")

    clock = SendFinishesWhileWaiting()
    report = erase_customer(storage, tenant.slug, "ada", clock, wait=10, poll=1)
    assert report.erased and report.provider_message_ids == ["mb-late"]
    assert clock.sleeps == [1]
    assert (storage.reminder(taken).body, storage.reminder(taken).provider_message_id) == (None, None)


def test_erasure_is_refused_while_a_reminder_is_still_being_sent_and_changes_nothing(
    storage: FakeStorage, tenant: Tenant, swept: Sweep, clock: FakeClock
) -> None:
    swept(tenant)
    start_sending(storage, tenant, subscription_of(storage, tenant, "ada"))
    before = storage.tables.snapshot()
    report = erase_customer(storage, tenant.slug, "ada", clock, wait=5, poll=1)
    assert (report.erased, report.sending, report.reminders) == (False, 1, 0)
    assert clock.slept == 5
    assert storage.tables.snapshot() == before
    assert show_customer(storage, tenant.slug, "ada").customer.name == "Ada Lovelace"


def test_a_database_lost_during_erasure_changes_nothing(storage: FakeStorage, tenant: Tenant, swept: Sweep) -> None:
    swept(tenant)
    before = storage.tables.snapshot()
    storage.fail_next(at="commit")
    with pytest.raises(StorageUnavailable):
        erase_customer(storage, tenant.slug, "ada", FakeClock())
    assert storage.tables.snapshot() == before


def test_after_erasure_the_same_reference_imports_as_a_new_customer(
    storage: FakeStorage, tenant: Tenant, clock: FakeClock
) -> None:
    old = show_customer(storage, tenant.slug, "ada").customer
    erase_customer(storage, tenant.slug, "ada", clock)
    counts = storage.add_customers(tenant, [customer("ada", TODAY + dt.timedelta(days=5), phone=ADA_PHONE)])
    assert counts.created == 1
    new = show_customer(storage, tenant.slug, "ada").customer
    assert new.id != old.id and new.erased_at is None and new.removed_at is None
