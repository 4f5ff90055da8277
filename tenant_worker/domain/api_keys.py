"""Tenant API keys: what a key looks like, how it is recognised, and the port that stores them.

A key reads ``twk_AbCdEfGh_<secret>``: the prefix (``twk_`` and 8 characters) is stored in clear so an
operator can tell keys apart in listings and revoke one by name; the whole key is stored only as its
SHA-256. Keys carry 256 random bits, so a plain hash is enough (a slow password hash protects secrets
people choose, and nobody chooses these). A key is shown once, when it is created.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from tenant_worker.domain.model import ValidationError

KEY_PREFIX = "twk_"
PREFIX_LENGTH = len(KEY_PREFIX) + 8
_KEY_SHAPE = re.compile(r"twk_[A-Za-z0-9]{8}_[A-Za-z0-9_-]{20,}")


@dataclass(frozen=True)
class ApiKey:
    """A stored key, without its secret."""

    id: int
    tenant_id: int
    prefix: str
    name: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None

    @property
    def active(self) -> bool:
        """Whether the key still opens its tenant."""
        return self.revoked_at is None


def hash_key(key: str) -> str:
    """The SHA-256 (hex) of a whole key: what is stored and looked up."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def looks_like_key(key: str) -> bool:
    """Whether ``key`` has the shape of a tenant key (anything else is not looked up at all)."""
    return _KEY_SHAPE.fullmatch(key) is not None


def prefix_of(key: str) -> str:
    """The visible prefix of a well-formed key."""
    return key[:PREFIX_LENGTH]


class ApiKeyStore(Protocol):
    """Where tenant keys live (``api_keys`` on PostgreSQL; in memory in the unit tests)."""

    def add(self, tenant_id: int, prefix: str, secret_hash: str, name: str) -> ApiKey:
        """Store a new key of ``tenant_id``; ``created_at`` is now."""
        ...

    def list(self, tenant_ids: Sequence[int] | None = None) -> list[ApiKey]:
        """Keys (revoked ones too, for the record), oldest first; only those of ``tenant_ids`` if given."""
        ...

    def revoke(self, prefix: str, at: dt.datetime) -> ApiKey | None:
        """Mark the key with ``prefix`` revoked at ``at`` (an already revoked key keeps its first
        time); the key as it is now, or None if no key has this prefix."""
        ...

    def find(self, secret_hash: str) -> ApiKey | None:
        """The key whose whole-key hash is ``secret_hash`` (revoked or not), or None."""
        ...

    def touch(self, key_id: int, at: dt.datetime) -> None:
        """Record that the key was used at ``at``."""
        ...


class UnknownApiKey(ValidationError):
    """No key has this prefix (or not for this tenant): the CLI says so (status 2), the API answers 404."""

    def __init__(self, message: str) -> None:
        super().__init__([message])
