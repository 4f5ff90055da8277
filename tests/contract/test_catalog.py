"""The catalog port's contract: tenants, templates, customers and subscriptions, on the fake and on SQL."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import pytest
from sqlalchemy.exc import IntegrityError

from tenant_worker.domain.model import TenantStatus, ValidationError
from tenant_worker.domain.records import ImportChunk, ImportCounts, Template
from tenant_worker.domain.shards import queue_for_new_tenant
from tests.conftest import customer
from tests.contract.conftest import SHARDS, TODAY, StorageUnderTest, import_customers, new_tenant, tenant_spec
from tests.fakes import ConstraintViolation


def test_a_new_tenant_gets_its_shard_queue_and_is_found_by_slug_and_id(storage: StorageUnderTest) -> None:
    spec = tenant_spec(windows=(7, 2), send_time=dt.time(9, 30), rate_per_second=2.5, max_segments=2)
    with storage.uow() as tx:
        tenant = tx.catalog.create_tenant(spec, SHARDS)
        assert tx.catalog.find_tenant(spec.slug) == tenant
    assert tenant.queue == queue_for_new_tenant(tenant.id, spec.slug, SHARDS)
    assert (tenant.slug, tenant.name, tenant.timezone, tenant.locale, tenant.originator) == (
        spec.slug,
        "Acme Fiber",
        "Europe/Amsterdam",
        "en",
        "AcmeFiber",
    )
    assert (tenant.windows, tenant.status, tenant.send_time, tenant.rate_per_second) == (
        (7, 2),
        "active",
        dt.time(9, 30),
        2.5,
    )
    assert (tenant.max_segments, tenant.window_start, tenant.window_end, tenant.scheduled) == (
        2,
        dt.time(0),
        dt.time(0),
        True,
    )
    with storage.uow() as tx:
        assert tx.catalog.find_tenant(spec.slug, lock=True) == tenant
        assert tx.catalog.get_tenant(tenant.id) == tenant


def test_a_dedicated_tenant_gets_its_own_queue_whatever_the_shard_count(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage, dedicated=True)
    assert tenant.queue == f"reminders.tenant.{tenant.slug}"


def test_the_shard_queue_follows_the_shard_count_given(storage: StorageUnderTest) -> None:
    with storage.uow() as tx:
        tenant = tx.catalog.create_tenant(tenant_spec(), 1)
    assert tenant.queue == "reminders.shard.00"


def test_a_taken_slug_is_a_validation_error_and_the_transaction_goes_on(storage: StorageUnderTest) -> None:
    first = new_tenant(storage)
    with storage.uow() as tx:
        with pytest.raises(ValidationError, match=f"a tenant with slug '{first.slug}' already exists"):
            tx.catalog.create_tenant(replace(tenant_spec(), slug=first.slug, name="Other"), SHARDS)
        other = tx.catalog.create_tenant(tenant_spec(), SHARDS)
    with storage.uow() as tx:
        assert tx.catalog.list_tenants() == sorted([first, other], key=lambda t: t.slug)


def test_unknown_tenants_are_validation_errors_naming_them(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage)
    with storage.uow() as tx:
        with pytest.raises(ValidationError, match="unknown tenant 'no-such-tenant'"):
            tx.catalog.find_tenant("no-such-tenant")
        with pytest.raises(ValidationError, match=f"unknown tenant id {tenant.id + 1000}"):
            tx.catalog.get_tenant(tenant.id + 1000)
        with pytest.raises(ValidationError, match=f"unknown tenant id {tenant.id + 1000}"):
            tx.catalog.save_tenant(replace(tenant, id=tenant.id + 1000))


def test_tenants_are_listed_by_slug_and_filtered_by_status_and_ids(storage: StorageUnderTest) -> None:
    b = new_tenant(storage, "b")
    a = new_tenant(storage, "a", status=TenantStatus.PAUSED)
    c = new_tenant(storage, "c")
    with storage.uow() as tx:
        catalog = tx.catalog
        assert catalog.list_tenants() == [a, b, c]
        assert catalog.list_tenants(TenantStatus.ACTIVE) == [b, c]
        assert catalog.list_tenants(TenantStatus.PAUSED) == [a]
        assert catalog.list_tenants(ids=[c.id, a.id]) == [a, c]
        assert catalog.list_tenants(TenantStatus.ACTIVE, ids=[c.id, a.id]) == [c]
        assert catalog.list_tenants(ids=[]) == []


def test_saving_a_tenant_writes_every_changeable_field_but_never_its_slug(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage)
    changed = replace(
        tenant,
        slug="renamed-tenant",
        name="Acme Glass",
        timezone="America/New_York",
        locale="nl-NL",
        originator="AcmeGlass",
        windows=(10, 4),
        status=TenantStatus.PAUSED,
        queue="reminders.shard.03",
        rate_per_second=1.5,
        max_segments=1,
        send_time=dt.time(11, 15),
        window_start=dt.time(9),
        window_end=dt.time(18),
        scheduled=False,
    )
    with storage.uow() as tx:
        tx.catalog.save_tenant(changed)
    with storage.uow() as tx:
        stored = tx.catalog.get_tenant(tenant.id)
        with pytest.raises(ValidationError):
            tx.catalog.find_tenant("renamed-tenant")
    assert stored == replace(changed, slug=tenant.slug, status="paused")
    assert stored.active is False


def test_purging_a_tenant_deletes_everything_of_it_and_nothing_of_others(storage: StorageUnderTest) -> None:
    gone, kept = new_tenant(storage), new_tenant(storage)
    due = TODAY + dt.timedelta(days=3)
    subscriptions = {}
    for tenant in (gone, kept):
        import_customers(storage, tenant, [customer(f"{tenant.slug}-1", due), customer(f"{tenant.slug}-2", due)])
        with storage.uow() as tx:
            tx.catalog.save_template(tenant.id, Template(None, None, "Hi {customer_name}"))
            ledger = tx.ledger(tenant.id)
            subscriptions[tenant.id] = [d.subscription_id for d in ledger.preview_due_reminders(TODAY, (5, 3, 1))]
            ledger.claim_due_reminders(TODAY, (5, 3, 1))
    with storage.uow() as tx:
        tx.catalog.purge_tenant(gone.id)
        tx.catalog.purge_tenant(gone.id + 1000)  # an unknown id is no error
    with storage.uow() as tx:
        assert tx.catalog.list_tenants() == [kept]
        assert tx.catalog.templates(gone.id) == []
        assert tx.ledger(gone.id).list_reminders() == []
        assert tx.ledger(gone.id).subscription_jobs(subscriptions[gone.id]) == {}
        assert tx.catalog.templates(kept.id) == [Template(None, None, "Hi {customer_name}")]
        assert tx.ledger(kept.id).count_status("pending") == 2
        assert len(tx.ledger(kept.id).subscription_jobs(subscriptions[kept.id])) == 2


def test_tenant_queues_lists_every_queue_with_its_slugs_in_order(storage: StorageUnderTest) -> None:
    one, two = new_tenant(storage, "b"), new_tenant(storage, "a")
    dedicated = new_tenant(storage, "c", dedicated=True)
    with storage.uow() as tx:
        tx.catalog.save_tenant(replace(one, queue="reminders.shard.03"))
        tx.catalog.save_tenant(replace(two, queue="reminders.shard.03"))
    with storage.uow() as tx:
        assert tx.catalog.tenant_queues() == {
            "reminders.shard.03": [two.slug, one.slug],
            dedicated.queue: [dedicated.slug],
        }


def test_templates_are_saved_replaced_deleted_and_ordered_by_window_then_locale(storage: StorageUnderTest) -> None:
    tenant, other = new_tenant(storage), new_tenant(storage)
    scopes = [(None, None), (3, "nl"), (3, None), (1, "en"), (None, "de"), (3, "en")]
    with storage.uow() as tx:
        for window, locale in scopes:
            tx.catalog.save_template(tenant.id, Template(window, locale, f"{window}/{locale}"))
        tx.catalog.save_template(other.id, Template(3, "nl", "other tenant"))
    with storage.uow() as tx:
        assert [(t.window_days, t.locale) for t in tx.catalog.templates(tenant.id)] == [
            (1, "en"),
            (3, "en"),
            (3, "nl"),
            (3, None),
            (None, "de"),
            (None, None),
        ]
        tx.catalog.save_template(tenant.id, Template(3, "nl", "replaced"))
        tx.catalog.save_template(tenant.id, Template(None, None, "None/None"))  # unchanged body
        tx.catalog.delete_template(tenant.id, 3, None)
        tx.catalog.delete_template(tenant.id, 5, "fr")  # nothing there: no error
    with storage.uow() as tx:
        assert tx.catalog.templates(tenant.id) == [
            Template(1, "en", "1/en"),
            Template(3, "en", "3/en"),
            Template(3, "nl", "replaced"),
            Template(None, "de", "None/de"),
            Template(None, None, "None/None"),
        ]
        assert tx.catalog.templates(other.id) == [Template(3, "nl", "other tenant")]


def test_an_import_counts_created_updated_renewed_and_unchanged_customers(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage)
    due = TODAY + dt.timedelta(days=3)
    first = [customer(f"r{i}", due, phone=f"+3161000000{i}") for i in range(4)]
    assert import_customers(storage, tenant, first) == ImportCounts(created=4)
    assert import_customers(storage, tenant, first) == ImportCounts(unchanged=4)
    second = [
        replace(first[0], name="Renamed"),
        replace(first[1], expires_on=due + dt.timedelta(days=365)),
        replace(first[2], amount=Decimal("29.950")),  # the same amount, written differently
        replace(first[3], status="cancelled", opted_out=True),
        customer("r9", due, phone="+31610000009"),
    ]
    assert import_customers(storage, tenant, second) == ImportCounts(created=1, updated=3, renewed=1, unchanged=1)
    with storage.uow() as tx:
        due_now = tx.ledger(tenant.id).preview_due_reminders(TODAY, (5, 3, 1))
        jobs = tx.ledger(tenant.id).subscription_jobs([d.subscription_id for d in due_now])
    assert sorted((j.customer_name, j.phone, j.expires_on) for j in jobs.values()) == [
        ("Customer r2", "+31610000002", due),
        ("Customer r3", "+31610000003", due),
        ("Customer r9", "+31610000009", due),
        ("Renamed", "+31610000000", due),
    ]
    assert {(j.plan, j.amount, j.currency, j.window_days, j.reminder_id, j.attempts) for j in jobs.values()} == {
        ("Fiber 100", Decimal("29.95"), "EUR", 0, 0, 0)
    }
    assert {d.skip_reason for d in due_now} == {None, "subscription_inactive"}


@pytest.mark.parametrize("write", ["template", "customers"])
def test_writing_for_a_tenant_that_does_not_exist_is_refused_by_the_schema(
    storage: StorageUnderTest, write: str
) -> None:
    tenant = new_tenant(storage)
    with pytest.raises((IntegrityError, ConstraintViolation)), storage.uow() as tx:
        if write == "template":
            tx.catalog.save_template(tenant.id + 1000, Template(None, None, "Hi"))
        else:
            chunk = ImportChunk([(2, customer("orphan", TODAY))])
            tx.catalog.import_rows(tenant.id + 1000, [chunk], full_sync=False, approve=lambda _plan: True)
    with storage.uow() as tx:
        assert tx.catalog.list_tenants() == [tenant]
