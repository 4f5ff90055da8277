"""Contract of the import's source digests (``Catalog.unchanged_digests`` and kept rows) on the fake
and on PostgreSQL: a row an earlier import wrote, with nothing changed since, is recognised by its
digest and taken as it is stored, exactly as if it had been staged again."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace

from tenant_worker.domain.records import CustomerRecord, ImportChunk, ImportCounts, ImportPlan, Tenant
from tests.conftest import customer
from tests.contract.conftest import TODAY, StorageUnderTest, new_tenant
from tests.contract.test_customer_sync import active_keys, state

DUE = TODAY + dt.timedelta(days=3)
ADA = customer("ada", DUE, phone="+31611111111")
BOB = customer("bob", DUE, phone="+31622222222")


def run(
    storage: StorageUnderTest,
    tenant: Tenant,
    staged: Sequence[tuple[int, CustomerRecord, int]] = (),
    kept: Sequence[tuple[int, int]] = (),
    *,
    unchanged: Sequence[int] = (),
    full_sync: bool = False,
) -> ImportPlan:
    """One import of ``staged`` (line, record, digest) and ``kept`` (line, digest) rows, and of
    ``unchanged`` digests."""
    chunk = ImportChunk([(line, r) for line, r, _ in staged], [d for _, _, d in staged], kept, unchanged)
    with storage.uow() as tx:
        plan, applied = tx.catalog.import_rows(tenant.id, [chunk], full_sync=full_sync, approve=lambda _plan: True)
    assert applied
    return plan


def unchanged(storage: StorageUnderTest, tenant: Tenant) -> set[int]:
    with storage.uow() as tx:
        return tx.catalog.unchanged_digests(tenant.id)


def test_the_digests_of_imported_rows_are_known_per_tenant(storage: StorageUnderTest) -> None:
    tenant, other = new_tenant(storage), new_tenant(storage)
    run(storage, tenant, [(2, ADA, 11), (3, replace(ADA, subscription_ref="tv"), 12), (4, BOB, 13)])
    run(storage, other, [(2, ADA, 21)])

    assert unchanged(storage, tenant) == {11, 12, 13}
    assert unchanged(storage, other) == {21}


def test_any_change_since_the_import_forgets_the_digest(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage)
    ada = replace(ADA, opted_out=True)
    run(storage, tenant, [(2, ada, 11), (3, replace(ada, subscription_ref="tv"), 12), (4, BOB, 13)])
    with storage.uow() as tx:
        found = tx.catalog.find_customer(tenant.id, "ada")
        assert found is not None
        tx.catalog.set_opted_out(tenant.id, found.id, False)  # an operator opts her back in

    assert unchanged(storage, tenant) == {13}  # both of ada's subscriptions, through her customer row

    run(storage, tenant, [(2, BOB, 13)], full_sync=True, kept=[])
    assert unchanged(storage, tenant) == {13}  # ada removed: not unchanged either


def test_an_import_never_clears_the_customers_own_opt_out(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage)
    run(storage, tenant, [(2, ADA, 11), (3, BOB, 13)])
    with storage.uow() as tx:
        found = tx.catalog.find_customer(tenant.id, "ada")
        assert found is not None
        assert tx.catalog.set_opted_out(tenant.id, found.id, True)  # she replied STOP

    assert unchanged(storage, tenant) == {11, 13}  # her row as the tenant sends it did not change
    plan = run(storage, tenant, [(2, replace(ADA, plan="Fiber 500"), 14), (3, BOB, 13)])

    assert plan.counts == ImportCounts(updated=1, unchanged=1)
    with storage.uow() as tx:
        found = tx.catalog.find_customer(tenant.id, "ada")
        assert found is not None and found.opted_out
        claimed = sorted(status for _, status in tx.ledger(tenant.id).claim_due_reminders(TODAY, (5, 3, 1)))
    assert claimed == ["pending", "skipped"]  # bob's sent, hers skipped


def test_kept_rows_are_unchanged_and_present_for_a_full_sync(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage)
    run(storage, tenant, [(2, ADA, 11), (3, BOB, 13)])
    before = state(storage, tenant)

    plan = run(storage, tenant, [(3, replace(BOB, plan="TV+"), 14)], kept=[(2, 11)], full_sync=True)

    assert plan.counts == ImportCounts(updated=1, unchanged=1)
    assert active_keys(storage, tenant) == {("ada", None), ("bob", None)}
    assert state(storage, tenant)[("ada", None)] == before[("ada", None)]  # not rewritten
    assert unchanged(storage, tenant) == {11, 14}


def test_a_kept_row_is_checked_against_the_staged_rows_of_its_customer(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage)
    run(storage, tenant, [(2, ADA, 11)])

    plan = run(storage, tenant, [(3, replace(ADA, name="Ada L.", subscription_ref="tv"), 12)], kept=[(2, 11)])

    assert plan.rejects == [(3, "customer 'ada': name, phone, opted_out or locale differ from line 2")]
    assert plan.counts == ImportCounts(unchanged=1)


def test_unchanged_digests_are_unchanged_and_present_for_a_full_sync(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage)
    run(storage, tenant, [(2, ADA, 11), (3, replace(ADA, subscription_ref="tv"), 12), (4, BOB, 13)])
    before = state(storage, tenant)

    plan = run(storage, tenant, unchanged=[11, 13], full_sync=True)

    assert plan.counts == ImportCounts(unchanged=2, removed=1)
    assert active_keys(storage, tenant) == {("ada", None), ("bob", None)}
    after = state(storage, tenant)
    assert (after[("ada", None)], after[("bob", None)]) == (before[("ada", None)], before[("bob", None)])


def test_a_staged_repeat_of_a_kept_row_is_rejected_as_a_repeat(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage)
    run(storage, tenant, [(2, ADA, 11)])

    plan = run(storage, tenant, [(5, ADA, 11)], kept=[(2, 11)])

    assert plan.rejects == [(5, "external_ref 'ada' repeats line 2")]
    assert plan.counts == ImportCounts(unchanged=1)


def test_a_row_written_differently_gets_its_new_digest_without_a_new_updated_at(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage)
    run(storage, tenant, [(2, ADA, 11)])
    before = state(storage, tenant)

    plan = run(storage, tenant, [(2, ADA, 99)])

    assert plan.counts == ImportCounts(unchanged=1)
    assert state(storage, tenant) == before
    assert unchanged(storage, tenant) == {99}
