"""Tenant API keys (``services.api_keys``) on the in-memory fakes: what a key looks like, that only its
hash is stored, that revoked and malformed keys open nothing, how often a use is recorded, and the
constant-time admin key check."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from tenant_worker.domain.api_keys import UnknownApiKey, hash_key, looks_like_key, prefix_of
from tenant_worker.domain.model import ValidationError
from tenant_worker.services import api_keys
from tests.fakes import FakeApiKeyStore, FakeClock, FakeStorage


@pytest.fixture
def keys(clock: FakeClock) -> FakeApiKeyStore:
    return FakeApiKeyStore(clock)


def test_a_new_key_has_the_visible_prefix_and_only_its_hash_is_stored(
    storage: FakeStorage, keys: FakeApiKeyStore
) -> None:
    storage.add_tenant("acme")

    created = api_keys.create_key(storage, keys, "acme", "  billing  ")

    assert looks_like_key(created.secret)
    assert created.secret.startswith("twk_") and created.key.prefix == prefix_of(created.secret)
    assert len(created.secret) >= 50  # twk_ + 8 + _ + 43 characters of 256 random bits
    assert created.key.name == "billing"
    assert keys.hashes == {hash_key(created.secret): created.key.id}
    assert created.secret not in repr(keys.keys)


def test_two_keys_never_share_a_prefix_or_a_secret(storage: FakeStorage, keys: FakeApiKeyStore) -> None:
    storage.add_tenant("acme")
    made = [api_keys.create_key(storage, keys, "acme").secret for _ in range(50)]
    assert len({prefix_of(k) for k in made}) == len(set(made)) == 50


def test_a_key_for_an_unknown_tenant_is_refused(storage: FakeStorage, keys: FakeApiKeyStore) -> None:
    with pytest.raises(ValidationError, match="unknown tenant"):
        api_keys.create_key(storage, keys, "nobody")
    assert keys.keys == {}


def test_authenticate_accepts_the_key_and_refuses_lookalikes(
    storage: FakeStorage, keys: FakeApiKeyStore, clock: FakeClock
) -> None:
    tenant = storage.add_tenant("acme")
    secret = api_keys.create_key(storage, keys, "acme").secret

    key = api_keys.authenticate(keys, secret, clock)

    assert key is not None and key.tenant_id == tenant.id
    for wrong in (secret[:-1], secret + "x", secret.upper(), "", "Bearer " + secret, prefix_of(secret)):
        assert api_keys.authenticate(keys, wrong, clock) is None


def test_a_revoked_key_opens_nothing(storage: FakeStorage, keys: FakeApiKeyStore, clock: FakeClock) -> None:
    storage.add_tenant("acme")
    created = api_keys.create_key(storage, keys, "acme")

    revoked = api_keys.revoke_key(storage, keys, created.key.prefix, clock)

    assert revoked.slug == "acme" and revoked.key.revoked_at == clock.now()
    assert api_keys.authenticate(keys, created.secret, clock) is None
    listed = api_keys.list_keys(storage, keys, "acme")
    assert [(k.key.prefix, k.key.active) for k in listed] == [(created.key.prefix, False)]


def test_revoking_needs_a_known_prefix_of_that_tenant(
    storage: FakeStorage, keys: FakeApiKeyStore, clock: FakeClock
) -> None:
    storage.add_tenant("acme")
    storage.add_tenant("other")
    created = api_keys.create_key(storage, keys, "acme")

    with pytest.raises(UnknownApiKey):
        api_keys.revoke_key(storage, keys, "twk_NOSUCHKY", clock)
    with pytest.raises(UnknownApiKey, match="for tenant 'other'"):
        api_keys.revoke_key(storage, keys, created.key.prefix, clock, slug="other")
    assert api_keys.authenticate(keys, created.secret, clock) is not None


def test_use_is_recorded_at_most_once_a_minute(storage: FakeStorage, keys: FakeApiKeyStore, clock: FakeClock) -> None:
    storage.add_tenant("acme")
    secret = api_keys.create_key(storage, keys, "acme").secret
    start = clock.now()

    for _ in range(5):
        api_keys.authenticate(keys, secret, clock)
        clock.advance(10)
    after_fifty_seconds = keys.touches
    clock.advance(20)
    api_keys.authenticate(keys, secret, clock)

    assert after_fifty_seconds == 1
    assert keys.touches == 2
    [key] = keys.keys.values()
    assert key.last_used_at == start + dt.timedelta(seconds=70)


def test_listing_all_tenants_names_each_key_s_tenant(storage: FakeStorage, keys: FakeApiKeyStore) -> None:
    storage.add_tenant("acme")
    storage.add_tenant("bravo")
    api_keys.create_key(storage, keys, "bravo", "b")
    api_keys.create_key(storage, keys, "acme", "a")

    listed = [(k.slug, k.key.name) for k in api_keys.list_keys(storage, keys)]

    assert listed == [("bravo", "b"), ("acme", "a")]
    assert all("key" not in k.as_dict() for k in api_keys.list_keys(storage, keys))


@pytest.mark.parametrize(
    ("presented", "expected"),
    [("a" * 32, True), ("b" * 32, True), ("a" * 31, False), ("a" * 33, False), ("", False), ("A" * 32, False)],
)
def test_admin_keys_match_exactly(presented: str, expected: bool) -> None:
    assert api_keys.is_admin_key(presented, ("a" * 32, "b" * 32)) is expected


def test_no_admin_keys_means_no_admin() -> None:
    assert not api_keys.is_admin_key("", ())
    assert not api_keys.is_admin_key("anything", ())


def test_a_key_record_is_active_until_revoked(storage: FakeStorage, keys: FakeApiKeyStore) -> None:
    storage.add_tenant("acme")
    key = api_keys.create_key(storage, keys, "acme").key
    assert key.active
    assert not dataclasses.replace(key, revoked_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)).active
