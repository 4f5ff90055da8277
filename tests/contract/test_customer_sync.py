"""Contract of ``Catalog.import_rows`` (the customer sync) on the fake and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tenant_worker.domain.records import CustomerRecord, ImportChunk, ImportCounts, ImportPlan, ImportRow, Tenant
from tests.conftest import customer
from tests.contract.conftest import TODAY, StorageUnderTest, new_tenant

DUE = TODAY + dt.timedelta(days=3)
WINDOWS = (5, 3, 1)


def rows(*records: CustomerRecord, start: int = 2) -> list[ImportRow]:
    """(line, record) pairs numbered as a CSV's data lines."""
    return [(start + i, r) for i, r in enumerate(records)]


def run(
    storage: StorageUnderTest,
    tenant: Tenant,
    records: Sequence[ImportRow] | Sequence[Sequence[ImportRow]],
    *,
    full_sync: bool = False,
    apply: bool = True,
) -> ImportPlan:
    """One import in its own unit of work; ``records`` one chunk or several."""
    parts: Any = records if records and isinstance(records[0], list) else [records]
    chunks = [ImportChunk(part) for part in parts]
    with storage.uow() as tx:
        plan, applied = tx.catalog.import_rows(tenant.id, chunks, full_sync=full_sync, approve=lambda _plan: apply)
    assert applied == apply
    return plan


def state(storage: StorageUnderTest, tenant: Tenant) -> dict[tuple[str, str | None], tuple[Any, ...]]:
    """Every subscription of the tenant: (customer ref, subscription ref) -> (name, expires_on,
    customer removed, subscription removed, customer updated_at, subscription updated_at)."""
    if storage.fake is not None:
        tables = storage.fake.tables
        found = {}
        for s in tables.subscriptions.values():
            if s.tenant_id == tenant.id:
                c = tables.customers[s.customer_id]
                found[(c.external_ref, s.external_ref)] = (
                    c.name,
                    s.expires_on,
                    c.removed_at is not None,
                    s.removed_at is not None,
                    c.updated_at,
                    s.updated_at,
                )
        return found
    assert storage.sessions is not None
    with storage.sessions() as session:
        result = session.execute(
            text("""
                SELECT c.external_ref, s.external_ref AS sub_ref, c.name, s.expires_on,
                       c.removed_at IS NOT NULL AS c_removed, s.removed_at IS NOT NULL AS s_removed,
                       c.updated_at AS c_updated, s.updated_at AS s_updated
                  FROM subscriptions s JOIN customers c ON c.id = s.customer_id
                 WHERE s.tenant_id = :tenant_id
            """),
            {"tenant_id": tenant.id},
        )
        return {(r[0], r[1]): tuple(r[2:]) for r in result}


def active_keys(storage: StorageUnderTest, tenant: Tenant) -> set[tuple[str, str | None]]:
    """The (customer, subscription) keys neither removed."""
    return {key for key, value in state(storage, tenant).items() if not value[2] and not value[3]}


def test_several_subscriptions_per_customer_are_created_then_left_alone(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage)
    ada = customer("ada", DUE, phone="+31611111111")
    first = rows(
        replace(ada, subscription_ref="fiber"),
        replace(ada, subscription_ref="tv"),
        customer("bob", DUE, phone="+31622222222"),
    )
    plan = run(storage, tenant, first)
    assert plan.counts == ImportCounts(created=3)
    assert plan.samples["created"] == ["ada/fiber", "ada/tv", "bob"]
    assert (plan.rejects, plan.active) == ([], 0)
    before = state(storage, tenant)
    assert set(before) == {("ada", "fiber"), ("ada", "tv"), ("bob", None)}

    assert run(storage, tenant, first).active == 0  # counted for a full sync only
    again = run(storage, tenant, first, full_sync=True)

    assert again.counts == ImportCounts(unchanged=3) and again.active == 3
    assert state(storage, tenant) == before  # updated_at kept: nothing rewritten
    with storage.uow() as tx:
        assert len(tx.ledger(tenant.id).claim_due_reminders(TODAY, WINDOWS)) == 3


def test_changes_are_counted_per_row_and_a_new_expiry_is_a_renewal(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage)
    ada, bob = customer("ada", DUE, phone="+31611111111"), customer("bob", DUE, phone="+31622222222")
    run(storage, tenant, rows(ada, bob, replace(bob, subscription_ref="tv")))
    later = DUE + dt.timedelta(days=365)

    plan = run(
        storage,
        tenant,
        rows(replace(ada, expires_on=later), bob, replace(bob, subscription_ref="tv", plan="TV+"), customer("cy", DUE)),
    )

    assert plan.counts == ImportCounts(created=1, updated=2, renewed=1, unchanged=1)
    assert plan.samples == {"created": ["cy"], "updated": ["ada", "bob/tv"], "renewed": ["ada"], "removed": []}
    assert state(storage, tenant)[("ada", None)][1] == later


def test_a_null_reference_is_the_customers_one_subscription_not_a_new_one(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage)
    record = customer("ada", DUE, phone="+31611111111")
    run(storage, tenant, rows(record))
    plan = run(storage, tenant, rows(replace(record, plan="Fiber 1000")))
    assert plan.counts == ImportCounts(updated=1)
    assert list(state(storage, tenant)) == [("ada", None)]


def test_rows_the_file_contradicts_are_rejected_by_line_and_left_out(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage)
    ada = customer("ada", DUE, phone="+31611111111")
    plan = run(
        storage,
        tenant,
        [
            rows(ada, replace(ada, subscription_ref="tv"), customer("bob", DUE)),
            rows(replace(ada, name="Ada again"), replace(ada, subscription_ref="gym", phone="+31633333333"), start=5),
        ],
    )
    assert plan.rejects == [
        (5, "external_ref 'ada' repeats line 2; customer 'ada': name, phone, opted_out or locale differ from line 2"),
        (6, "customer 'ada': name, phone, opted_out or locale differ from line 2"),
    ]
    assert plan.counts == ImportCounts(created=3)
    assert set(state(storage, tenant)) == {("ada", None), ("ada", "tv"), ("bob", None)}


def test_an_import_of_no_rows_plans_nothing_and_changes_nothing(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage)
    run(storage, tenant, rows(customer("ada", DUE, phone="+31611111111")))
    before = state(storage, tenant)
    plan = run(storage, tenant, [])
    assert (plan.counts, plan.rejects) == (ImportCounts(), [])
    assert state(storage, tenant) == before


def test_a_plan_not_approved_writes_nothing(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage)
    run(storage, tenant, rows(customer("ada", DUE, phone="+31611111111")))
    before = state(storage, tenant)
    plan = run(storage, tenant, rows(customer("bob", DUE)), full_sync=True, apply=False)
    assert plan.counts == ImportCounts(created=1, removed=1)
    assert plan.samples["removed"] == ["ada"]
    assert state(storage, tenant) == before


def test_a_full_sync_removes_what_the_file_lacks_and_skips_its_pending_reminders(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage)
    ada, bob = customer("ada", DUE, phone="+31611111111"), customer("bob", DUE, phone="+31622222222")
    run(storage, tenant, rows(ada, replace(ada, subscription_ref="tv"), bob))
    with storage.uow() as tx:
        claimed = tx.ledger(tenant.id).claim_due_reminders(TODAY, WINDOWS)
    assert [status for _, status in claimed] == ["pending"] * 3

    plan = run(storage, tenant, rows(ada), full_sync=True)

    assert plan.counts == ImportCounts(unchanged=1, removed=2)
    assert plan.samples["removed"] == ["ada/tv", "bob"]
    assert active_keys(storage, tenant) == {("ada", None)}
    assert state(storage, tenant)[("bob", None)][2:4] == (True, True)
    assert state(storage, tenant)[("ada", "tv")][2:4] == (False, True)
    with storage.uow() as tx:
        ledger = tx.ledger(tenant.id)
        views = ledger.list_reminders()
        assert ledger.claim_due_reminders(TODAY + dt.timedelta(days=1), WINDOWS) == []  # removed: never swept
    assert sorted((v.status, v.skip_reason) for v in views) == [
        ("pending", None),
        ("skipped", "removed"),
        ("skipped", "removed"),
    ]


def test_importing_a_removed_subscription_brings_it_back(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage)
    ada, bob = customer("ada", DUE, phone="+31611111111"), customer("bob", DUE, phone="+31622222222")
    run(storage, tenant, rows(ada, bob))
    run(storage, tenant, rows(ada), full_sync=True)
    plan = run(storage, tenant, rows(bob))
    assert plan.counts == ImportCounts(updated=1)
    assert active_keys(storage, tenant) == {("ada", None), ("bob", None)}


def test_a_failure_while_streaming_leaves_the_previous_state(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage)
    run(storage, tenant, rows(customer("ada", DUE, phone="+31611111111")))
    before = state(storage, tenant)

    def chunks() -> Iterator[ImportChunk]:
        yield ImportChunk(rows(customer("bob", DUE)))
        raise RuntimeError("the file went away")

    with pytest.raises(RuntimeError), storage.uow() as tx:
        tx.catalog.import_rows(tenant.id, chunks(), full_sync=True, approve=lambda _plan: True)
    assert state(storage, tenant) == before


def test_the_schema_refusing_a_row_half_way_leaves_the_previous_state(storage: StorageUnderTest) -> None:
    if storage.fake is not None:
        pytest.skip("the fake checks no subscription status; the service validates it before the port")
    tenant = new_tenant(storage)
    run(storage, tenant, rows(customer("ada", DUE, phone="+31611111111")))
    before = state(storage, tenant)
    bad = [customer(f"c{i}", DUE) for i in range(50)] + [customer("bad", DUE, status="bogus")]
    with pytest.raises(IntegrityError), storage.uow() as tx:
        tx.catalog.import_rows(tenant.id, [ImportChunk(rows(*bad))], full_sync=True, approve=lambda _plan: True)
    assert state(storage, tenant) == before


def test_a_customers_locale_is_imported_changed_and_carried_to_the_send_job(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage)
    ada = customer("ada", DUE, phone="+31611111111", locale="fr_BE")
    bob = customer("bob", DUE, phone="+31622222222")
    run(storage, tenant, rows(ada, bob))

    def locales() -> dict[str, str | None]:
        with storage.uow() as tx:
            repo = tx.ledger(tenant.id)
            due = repo.preview_due_reminders(TODAY, WINDOWS)
            jobs = repo.subscription_jobs([d.subscription_id for d in due])
        return {job.customer_name: job.locale for job in jobs.values()}

    assert locales() == {"Customer ada": "fr_BE", "Customer bob": None}
    assert run(storage, tenant, rows(ada, bob)).counts == ImportCounts(unchanged=2)

    plan = run(storage, tenant, rows(replace(ada, locale="nl_BE"), bob))

    assert plan.counts == ImportCounts(updated=1, unchanged=1)
    assert locales() == {"Customer ada": "nl_BE", "Customer bob": None}
    with storage.uow() as tx:
        shown = [tx.catalog.find_customer(tenant.id, ref) for ref in ("ada", "bob")]
    assert [view.locale if view else "missing" for view in shown] == ["nl_BE", None]
    with storage.uow() as tx:
        claimed = [reminder_id for reminder_id, _status in tx.ledger(tenant.id).claim_due_reminders(TODAY, WINDOWS)]
    with storage.uow() as tx:
        jobs = tx.ledger(tenant.id).start_sending(claimed)
    assert {job.customer_name: job.locale for job in jobs} == {"Customer ada": "nl_BE", "Customer bob": None}


def test_one_customers_rows_must_agree_on_the_locale(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage)
    ada = customer("ada", DUE, phone="+31611111111", locale="fr_BE")
    plan = run(storage, tenant, rows(ada, replace(ada, subscription_ref="tv", locale="nl_BE")))
    assert plan.rejects == [(3, "customer 'ada': name, phone, opted_out or locale differ from line 2")]
