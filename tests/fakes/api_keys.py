"""``ApiKeyStore`` in memory: ``adapters.api_keys.SqlApiKeyStore``'s behaviour, checked by the same
contract tests (``tests/contract/test_api_keys.py``). Prefixes and hashes are unique, as the table's
unique indexes make them; a duplicate is a :class:`ConstraintViolation`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import threading
from collections.abc import Sequence

from tenant_worker.domain.api_keys import ApiKey
from tenant_worker.domain.ports import SYSTEM_CLOCK, Clock
from tests.fakes.tables import ConstraintViolation


class FakeApiKeyStore:
    """Keys in a dict by id, with their hashes beside them."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self.keys: dict[int, ApiKey] = {}
        self.hashes: dict[str, int] = {}
        self.touches = 0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, tenant_id: int, prefix: str, secret_hash: str, name: str) -> ApiKey:
        """Store a new key, stamped with the clock's now."""
        with self._lock:
            if secret_hash in self.hashes or any(k.prefix == prefix for k in self.keys.values()):
                raise ConstraintViolation("api_keys: duplicate prefix or hash")
            key = ApiKey(next(self._ids), tenant_id, prefix, name, self.clock.now())
            self.keys[key.id] = key
            self.hashes[secret_hash] = key.id
            return key

    def list(self, tenant_ids: Sequence[int] | None = None) -> list[ApiKey]:
        """Keys oldest first (ids grow with creation), of ``tenant_ids`` if given."""
        with self._lock:
            keys = sorted(self.keys.values(), key=lambda k: (k.created_at, k.id))
        return [k for k in keys if tenant_ids is None or k.tenant_id in tenant_ids]

    def revoke(self, prefix: str, at: dt.datetime) -> ApiKey | None:
        """Set ``revoked_at`` once."""
        with self._lock:
            for key in self.keys.values():
                if key.prefix == prefix:
                    if key.revoked_at is None:
                        key = self.keys[key.id] = dataclasses.replace(key, revoked_at=at)
                    return key
            return None

    def find(self, secret_hash: str) -> ApiKey | None:
        """The key with this hash."""
        with self._lock:
            key_id = self.hashes.get(secret_hash)
            return None if key_id is None else self.keys[key_id]

    def touch(self, key_id: int, at: dt.datetime) -> None:
        """Move ``last_used_at`` forward, never back."""
        with self._lock:
            self.touches += 1
            key = self.keys.get(key_id)
            if key is not None and (key.last_used_at is None or key.last_used_at < at):
                self.keys[key_id] = dataclasses.replace(key, last_used_at=at)

    def forget_tenant(self, tenant_id: int) -> None:
        """What the table's ``ON DELETE CASCADE`` does when a tenant is purged."""
        with self._lock:
            for key_id in [k.id for k in self.keys.values() if k.tenant_id == tenant_id]:
                del self.keys[key_id]
            self.hashes = {h: i for h, i in self.hashes.items() if i in self.keys}
