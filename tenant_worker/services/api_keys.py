"""Tenant API keys: create (shown once), list, revoke, and recognise one on a request; admin keys.

Every request presents a key: :func:`authenticate` hashes it and asks the store, and records when the
key was last used at most once per :data:`TOUCH_INTERVAL` per key (a write per request would turn
every read of the API into a database write for a column only an operator looks at).
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass

from tenant_worker.domain.api_keys import (
    KEY_PREFIX,
    ApiKey,
    ApiKeyStore,
    UnknownApiKey,
    hash_key,
    looks_like_key,
)
from tenant_worker.domain.ports import Clock
from tenant_worker.domain.storage import UnitOfWorkFactory

TOUCH_INTERVAL = dt.timedelta(minutes=1)
_ALPHANUMERIC = string.ascii_letters + string.digits


@dataclass(frozen=True)
class CreatedKey:
    """A new key and its whole text: the only time the secret is seen."""

    key: ApiKey
    secret: str


@dataclass(frozen=True)
class KeyListing:
    """A key with its tenant's slug, for listings."""

    slug: str
    key: ApiKey

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form (never the secret: it is not stored)."""
        k = self.key
        return {
            "tenant": self.slug, "prefix": k.prefix, "name": k.name, "active": k.active,
            "created_at": k.created_at.isoformat(),
            "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
            "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
        }  # fmt: skip


def new_key_text() -> str:
    """A fresh key: the visible prefix (``twk_`` + 8 characters), ``_``, and 256 random bits."""
    visible = "".join(secrets.choice(_ALPHANUMERIC) for _ in range(8))
    return f"{KEY_PREFIX}{visible}_{secrets.token_urlsafe(32)}"


def create_key(uow: UnitOfWorkFactory, store: ApiKeyStore, slug: str, name: str = "") -> CreatedKey:
    """Create a key for tenant ``slug`` (a ``ValidationError`` if there is none)."""
    with uow() as tx:
        tenant = tx.catalog.find_tenant(slug)
    text = new_key_text()
    key = store.add(tenant.id, text[: len(KEY_PREFIX) + 8], hash_key(text), name.strip())
    return CreatedKey(key, text)


def list_keys(uow: UnitOfWorkFactory, store: ApiKeyStore, slug: str | None = None) -> list[KeyListing]:
    """Keys of one tenant, or of all tenants (revoked ones included), oldest first."""
    with uow() as tx:
        tenants = [tx.catalog.find_tenant(slug)] if slug else tx.catalog.list_tenants()
    slugs = {t.id: t.slug for t in tenants}
    return [KeyListing(slugs[k.tenant_id], k) for k in store.list(list(slugs)) if k.tenant_id in slugs]


def revoke_key(
    uow: UnitOfWorkFactory, store: ApiKeyStore, prefix: str, clock: Clock, slug: str | None = None
) -> KeyListing:
    """Revoke the key with ``prefix`` (of tenant ``slug`` only, if given); requests with it get 401
    from now on. Revoking twice is harmless."""
    tenant_ids = None
    if slug is not None:
        with uow() as tx:
            tenant_ids = [tx.catalog.find_tenant(slug).id]
    known = [k for k in store.list(tenant_ids) if k.prefix == prefix]
    if not known:
        raise UnknownApiKey(f"no API key with prefix {prefix!r}" + (f" for tenant {slug!r}" if slug else ""))
    revoked = store.revoke(prefix, clock.now())
    if revoked is None:
        raise UnknownApiKey(f"no API key with prefix {prefix!r}")
    with uow() as tx:
        tenant = tx.catalog.get_tenant(revoked.tenant_id)
    return KeyListing(tenant.slug, revoked)


def authenticate(store: ApiKeyStore, presented: str, clock: Clock) -> ApiKey | None:
    """The active key ``presented`` is, or None (unknown, malformed or revoked)."""
    if not looks_like_key(presented):
        return None
    key = store.find(hash_key(presented))
    if key is None or not key.active:
        return None
    now = clock.now()
    if key.last_used_at is None or now - key.last_used_at >= TOUCH_INTERVAL:
        store.touch(key.id, now)
    return key


def is_admin_key(presented: str, admin_keys: Sequence[str]) -> bool:
    """Whether ``presented`` is one of the admin keys, compared in constant time (every key is
    compared, so the answer's timing tells nothing about which one nearly matched)."""
    given = presented.encode("utf-8")
    matches = [hmac.compare_digest(given, key.encode("utf-8")) for key in admin_keys]
    return any(matches)
