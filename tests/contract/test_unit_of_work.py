"""A unit of work is one transaction: all of its block or nothing, on the fake and on SQL."""

from __future__ import annotations

import datetime as dt

import pytest

from tenant_worker.domain.model import ValidationError
from tenant_worker.domain.records import Template
from tests.conftest import customer
from tests.contract.conftest import SHARDS, TODAY, StorageUnderTest, new_tenant, pending, rows, tenant_spec
from tests.seeding import seed_customers


class Boom(Exception):
    """Something a service raises in the middle of its transaction."""


def test_a_block_that_raises_leaves_nothing_it_wrote(storage: StorageUnderTest) -> None:
    kept, ids = pending(storage, 2)
    spec = tenant_spec()
    with pytest.raises(Boom), storage.uow() as tx:
        tenant = tx.catalog.create_tenant(spec, SHARDS)
        tx.catalog.save_template(tenant.id, Template(None, None, "Hi"))
        seed_customers(tx, tenant.id, [customer("lost", TODAY + dt.timedelta(days=1))])
        assert tx.catalog.find_tenant(spec.slug) == tenant  # a block reads its own writes
        tx.ledger(kept.id).start_sending(ids)
        tx.ledger(kept.id).cancel_pending("tenant_offboarded")
        assert tx.ledger(kept.id).count_status("sending") == 2
        raise Boom
    with storage.uow() as tx:
        with pytest.raises(ValidationError):
            tx.catalog.find_tenant(spec.slug)
        assert tx.catalog.list_tenants() == [kept]
    assert {row.status for row in rows(storage, kept).values()} == {"pending"}


def test_a_block_that_ends_normally_commits_everything(storage: StorageUnderTest) -> None:
    tenant, ids = pending(storage, 2)
    with storage.uow() as tx:
        tx.ledger(tenant.id).start_sending(ids[:1])
        tx.catalog.save_template(tenant.id, Template(1, None, "Last day"))
    with storage.uow() as tx:
        assert tx.ledger(tenant.id).count_status("sending") == 1
        assert tx.catalog.templates(tenant.id) == [Template(1, None, "Last day")]


def test_a_ledger_cannot_be_used_outside_its_block(storage: StorageUnderTest) -> None:
    tenant = new_tenant(storage)
    unit = storage.uow()
    with unit as tx:
        tx.ledger(tenant.id).count_status("pending")
    with pytest.raises(RuntimeError, match="outside its `with` block"):
        unit.ledger(tenant.id)
