"""The port methods of single customer operations (``customers show|remove|opt-out|erase``), on the fake
and on SQL: finding a customer, removing and opting out (the claim then skips them), cancelling and
erasing one customer's reminders without touching anyone else's."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

from sqlalchemy import text

from tenant_worker.domain.records import Tenant
from tests.conftest import customer
from tests.contract.conftest import (
    TODAY,
    StorageUnderTest,
    claim,
    import_customers,
    new_tenant,
    now,
    pending,
    rows,
)

DUE = TODAY + dt.timedelta(days=3)


def find(storage: StorageUnderTest, tenant: Tenant, ref: str):  # type: ignore[no-untyped-def]
    with storage.uow() as tx:
        return tx.catalog.find_customer(tenant.id, ref)


def claim_today(storage: StorageUnderTest, tenant: Tenant) -> dict[int, str]:
    with storage.uow() as tx:
        return dict(tx.ledger(tenant.id).claim_due_reminders(TODAY, (5, 3, 1)))


def test_a_customer_is_found_by_reference_with_their_subscriptions_in_its_tenant_only(
    storage: StorageUnderTest,
) -> None:
    tenant, other = new_tenant(storage), new_tenant(storage)
    import_customers(storage, tenant, [customer("ada", DUE, phone="+31612345678", name="Ada Lovelace")])
    import_customers(storage, other, [customer("bob", DUE)])
    found = find(storage, tenant, "ada")
    assert found is not None
    assert (found.external_ref, found.name, found.phone, found.opted_out) == (
        "ada",
        "Ada Lovelace",
        "+31612345678",
        False,
    )
    assert (found.removed_at, found.erased_at) == (None, None)
    [subscription] = found.subscriptions
    assert (subscription.external_ref, subscription.plan, subscription.amount, subscription.currency) == (
        None,
        "Fiber 100",
        Decimal("29.95"),
        "EUR",
    )
    assert (subscription.expires_on, subscription.status, subscription.removed_at) == (DUE, "active", None)
    assert found.subscription_ids == [subscription.id]
    assert find(storage, tenant, "bob") is None
    assert find(storage, tenant, "nobody") is None
    with storage.uow() as tx:
        assert tx.catalog.find_customer(tenant.id, "ada", lock=True) == found


def test_a_removed_customer_is_never_claimed_and_removing_again_changes_nothing(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage)
    import_customers(storage, tenant, [customer("gone", DUE), customer("kept", DUE)])
    gone = find(storage, tenant, "gone")
    assert gone is not None
    with storage.uow() as tx:
        assert tx.catalog.remove_customer(tenant.id, gone.id) is True
    removed = find(storage, tenant, "gone")
    assert removed is not None and removed.removed_at is not None
    assert all(s.removed_at == removed.removed_at for s in removed.subscriptions)
    kept = find(storage, tenant, "kept")
    assert kept is not None
    with storage.uow() as tx:
        assert tx.catalog.remove_customer(tenant.id, gone.id) is False
        preview = tx.ledger(tenant.id).preview_due_reminders(TODAY, (5, 3, 1))
    assert [item.subscription_id for item in preview] == kept.subscription_ids
    assert find(storage, tenant, "gone") == removed  # the first removal's time stays
    claimed = claim_today(storage, tenant)
    assert [row.subscription_id for row in rows(storage, tenant).values()] == kept.subscription_ids
    assert list(claimed.values()) == ["pending"]


def test_an_opted_out_customer_is_claimed_as_skipped_and_opting_in_again_is_seen(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage)
    import_customers(storage, tenant, [customer("ada", DUE)])
    ada = find(storage, tenant, "ada")
    assert ada is not None
    with storage.uow() as tx:
        assert tx.catalog.set_opted_out(tenant.id, ada.id, True) is True
        assert tx.catalog.set_opted_out(tenant.id, ada.id, True) is False
    assert find(storage, tenant, "ada").opted_out is True  # type: ignore[union-attr]
    claim_today(storage, tenant)
    [row] = rows(storage, tenant).values()
    assert (row.status, row.skip_reason) == ("skipped", "opted_out")
    with storage.uow() as tx:
        assert tx.catalog.set_opted_out(tenant.id, ada.id, False) is True
    assert find(storage, tenant, "ada").opted_out is False  # type: ignore[union-attr]


def test_cancelling_one_customers_pending_reminders_leaves_others_and_rows_being_sent(
    storage: StorageUnderTest,
) -> None:
    tenant, _ = pending(storage, 3)
    other, other_ids = pending(storage, 1)
    by_subscription = {row.subscription_id: row.id for row in rows(storage, tenant).values()}
    target, bystander, taken = sorted(by_subscription)
    claim(storage, tenant, [by_subscription[taken]])
    with storage.uow() as tx:
        ledger = tx.ledger(tenant.id)
        assert ledger.cancel_pending_of([target, taken], "removed") == 1
        assert ledger.cancel_pending_of([target, taken], "removed") == 0
        # Another tenant's subscription ids match nothing through this tenant's ledger.
        other_subscription = rows(storage, other)[other_ids[0]].subscription_id
        assert ledger.cancel_pending_of([other_subscription], "removed") == 0
    after = rows(storage, tenant)
    assert (after[by_subscription[target]].status, after[by_subscription[target]].skip_reason) == (
        "skipped",
        "removed",
    )
    assert after[by_subscription[bystander]].status == "pending"
    assert after[by_subscription[taken]].status == "sending"
    assert rows(storage, other)[other_ids[0]].status == "pending"


def test_one_customers_reminders_are_listed_by_id_and_erased_keeping_status_window_and_dates(
    storage: StorageUnderTest,
) -> None:
    tenant, ids = pending(storage, 2)
    jobs = claim(storage, tenant, ids)
    sent_at = now()
    storage.set_reminders(
        ids, status="sent", body="Hi Ada", provider_message_id="mb-1", last_error="old", sent_at=sent_at
    )
    before = rows(storage, tenant)
    mine = before[ids[0]].subscription_id
    with storage.uow() as tx:
        ledger = tx.ledger(tenant.id)
        assert [row.id for row in ledger.reminders_of([mine])] == [ids[0]]
        assert [row.id for row in ledger.reminders_of([mine], lock=True)] == [ids[0]]
        assert [row.id for row in ledger.reminders_of([])] == []
        assert ledger.erase_reminders_of([mine]) == 1
    after = rows(storage, tenant)
    erased = after[ids[0]]
    assert (erased.body, erased.provider_message_id, erased.last_error) == (None, None, None)
    kept = ("status", "window_days", "expires_on", "local_date", "sent_at", "updated_at", "created_at", "attempts")
    assert {name: getattr(erased, name) for name in kept} == {name: getattr(before[ids[0]], name) for name in kept}
    assert after[ids[1]] == before[ids[1]]
    assert len(jobs) == 2


def test_an_erased_customer_keeps_an_anonymous_row_and_their_old_reference_is_free(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage)
    import_customers(storage, tenant, [customer("ada", DUE, phone="+31612345678", name="Ada Lovelace")])
    ada = find(storage, tenant, "ada")
    assert ada is not None
    with storage.uow() as tx:
        tx.catalog.erase_customer(tenant.id, ada.id, "erased-token-1")
    assert find(storage, tenant, "ada") is None
    erased = find(storage, tenant, "erased-token-1")
    assert erased is not None and erased.id == ada.id
    assert (erased.name, erased.phone, erased.opted_out) == ("", None, True)
    assert erased.erased_at is not None and erased.removed_at == erased.erased_at
    assert [(s.id, s.external_ref, s.removed_at) for s in erased.subscriptions] == [
        (ada.subscriptions[0].id, None, erased.erased_at)
    ]
    assert claim_today(storage, tenant) == {}
    # The same reference imported again is somebody new.
    counts = import_customers(storage, tenant, [customer("ada", DUE, phone="+31612345678", name="Ada Lovelace")])
    assert counts.created == 1
    again = find(storage, tenant, "ada")
    assert again is not None and again.id != ada.id and again.erased_at is None


def remove_subscription(storage: StorageUnderTest, subscription_id: int) -> None:
    """Stamp ``removed_at`` on one subscription only (what a full sync does; no port of this suite does it)."""
    if storage.fake is not None:
        with storage.fake.lock:
            row = storage.fake.tables.subscriptions[subscription_id]
            storage.fake.tables.subscriptions[subscription_id] = replace(row, removed_at=now())
        return
    assert storage.sessions is not None
    with storage.sessions.begin() as session:
        session.execute(text("UPDATE subscriptions SET removed_at = now() WHERE id = :id"), {"id": subscription_id})


def test_a_removed_subscription_of_a_present_customer_is_never_claimed(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage)
    import_customers(storage, tenant, [customer("ada", DUE), customer("bob", DUE)])
    ada, bob = find(storage, tenant, "ada"), find(storage, tenant, "bob")
    assert ada is not None and bob is not None
    remove_subscription(storage, ada.subscription_ids[0])
    with storage.uow() as tx:
        preview = tx.ledger(tenant.id).preview_due_reminders(TODAY, (5, 3, 1))
    assert [item.subscription_id for item in preview] == bob.subscription_ids
    claim_today(storage, tenant)
    assert [row.subscription_id for row in rows(storage, tenant).values()] == bob.subscription_ids
