"""The API key store's contract, on the in-memory fake and on PostgreSQL (``api_keys``)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import pytest

from tenant_worker.adapters.api_keys import SqlApiKeyStore
from tenant_worker.domain.api_keys import ApiKeyStore
from tests.contract.conftest import StorageUnderTest, new_tenant, now
from tests.fakes import FakeApiKeyStore

Purge = Callable[[int], None]


@pytest.fixture
def keys(storage: StorageUnderTest) -> tuple[ApiKeyStore, Purge]:
    """The key store beside the storage subject, and how to purge a tenant (the cascade included)."""
    if storage.fake is not None:
        fake_storage, fake = storage.fake, FakeApiKeyStore()

        def purge_fake(tenant_id: int) -> None:
            with fake_storage() as tx:
                tx.catalog.purge_tenant(tenant_id)
            fake.forget_tenant(tenant_id)

        return fake, purge_fake
    assert storage.sessions is not None

    def purge(tenant_id: int) -> None:
        with storage.uow() as tx:
            tx.catalog.purge_tenant(tenant_id)

    return SqlApiKeyStore(storage.sessions), purge


def digest() -> str:
    return uuid.uuid4().hex * 2


def test_a_key_is_found_by_its_hash_only(storage: StorageUnderTest, keys: tuple[ApiKeyStore, Purge]) -> None:
    store, _ = keys
    tenant = new_tenant(storage)
    secret_hash = digest()
    added = store.add(tenant.id, "twk_AAAAAAAA", secret_hash, "billing")

    found = store.find(secret_hash)

    assert found == added
    assert (found.tenant_id, found.prefix, found.name, found.active) == (tenant.id, "twk_AAAAAAAA", "billing", True)
    assert found.created_at.tzinfo is not None and abs(found.created_at - now()) < dt.timedelta(minutes=1)
    assert store.find(digest()) is None


def test_listing_is_oldest_first_and_filters_by_tenant(
    storage: StorageUnderTest, keys: tuple[ApiKeyStore, Purge]
) -> None:
    store, _ = keys
    a, b = new_tenant(storage), new_tenant(storage)
    first = store.add(a.id, "twk_AAAAAAA1", digest(), "one")
    other = store.add(b.id, "twk_BBBBBBB1", digest(), "")
    second = store.add(a.id, "twk_AAAAAAA2", digest(), "two")

    assert [k.prefix for k in store.list([a.id])] == [first.prefix, second.prefix]
    assert [k.prefix for k in store.list([b.id])] == [other.prefix]
    assert [k.prefix for k in store.list()] == [first.prefix, other.prefix, second.prefix]
    assert store.list([]) == []


def test_revoking_keeps_the_first_revocation_time(storage: StorageUnderTest, keys: tuple[ApiKeyStore, Purge]) -> None:
    store, _ = keys
    tenant = new_tenant(storage)
    secret_hash = digest()
    store.add(tenant.id, "twk_RRRRRRRR", secret_hash, "")
    first = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)

    revoked = store.revoke("twk_RRRRRRRR", first)
    again = store.revoke("twk_RRRRRRRR", first + dt.timedelta(hours=1))

    assert revoked is not None and again is not None
    assert revoked.revoked_at == again.revoked_at == first
    found = store.find(secret_hash)
    assert found is not None and not found.active
    assert store.revoke("twk_NOSUCHKY", first) is None


def test_last_use_only_moves_forward(storage: StorageUnderTest, keys: tuple[ApiKeyStore, Purge]) -> None:
    store, _ = keys
    tenant = new_tenant(storage)
    secret_hash = digest()
    key = store.add(tenant.id, "twk_TTTTTTTT", secret_hash, "")
    later = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)

    store.touch(key.id, later)
    store.touch(key.id, later - dt.timedelta(minutes=5))

    found = store.find(secret_hash)
    assert found is not None and found.last_used_at == later


def test_purging_a_tenant_removes_its_keys(storage: StorageUnderTest, keys: tuple[ApiKeyStore, Purge]) -> None:
    store, purge = keys
    gone, kept = new_tenant(storage), new_tenant(storage)
    gone_hash, kept_hash = digest(), digest()
    store.add(gone.id, "twk_GGGGGGGG", gone_hash, "")
    store.add(kept.id, "twk_KKKKKKKK", kept_hash, "")

    purge(gone.id)

    assert store.find(gone_hash) is None
    assert store.find(kept_hash) is not None
    assert [k.prefix for k in store.list()] == ["twk_KKKKKKKK"]
