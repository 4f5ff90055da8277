"""Ports of the HTTP control plane besides the keys: the per-key request limit and the memory of
``Idempotency-Key`` answers. Both live in Redis (``adapters.redis_api``), shared by every API process."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol


class RequestStoreUnavailable(RuntimeError):
    """The store behind the limit or the idempotency memory cannot be reached (the API answers 503:
    running a request twice, or unthrottled, is worse than asking the client to retry)."""


class RequestLimiter(Protocol):
    """A token bucket per API key."""

    def acquire(self, key_id: str) -> float:
        """Take one request from ``key_id``'s bucket: 0 when allowed, else the seconds until one is."""
        ...


@dataclass(frozen=True)
class StoredAnswer:
    """The first answer to an idempotent request, replayed to its repetitions."""

    status: int
    content_type: str
    body: bytes


class Claim(enum.Enum):
    """What :meth:`IdempotencyStore.claim` found besides a stored answer."""

    NEW = "new"  # nobody used the key: the caller runs the request
    RUNNING = "running"  # the first request with this key has not answered yet
    MISMATCH = "mismatch"  # the key was used for a different request


class IdempotencyStore(Protocol):
    """Answers remembered by (scope, Idempotency-Key); a scope is a tenant, or an admin key."""

    def claim(self, scope: str, key: str, fingerprint: str) -> Claim | StoredAnswer:
        """Atomically: mark the key running if unused (:attr:`Claim.NEW`), else say what it holds."""
        ...

    def remember(self, scope: str, key: str, fingerprint: str, answer: StoredAnswer) -> None:
        """Keep ``answer`` for the key (for a day)."""
        ...

    def release(self, scope: str, key: str) -> None:
        """Forget a claimed key whose request failed, so that a retry runs it again."""
        ...
