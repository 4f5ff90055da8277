"""Routing tenant-scoped Celery tasks to the tenant's stored queue, with a per-process cache.

Every send task names its tenant id; :class:`TenantRouter` looks the tenant's queue up in PostgreSQL
once and caches it. A move (``tenant-worker tenant move``) commits the new queue and then increments a
version key in Redis; every cache compares that key at most once per ``check_every`` seconds and
drops everything when it changed. Entries also expire after ``ttl`` seconds, which bounds staleness if
the version bump itself was lost (Redis down or flushed at that moment).

Why a version key rather than pub/sub: a subscriber needs a long-lived connection and a thread in
every publishing process (workers, CLI, beat), and a message sent while one was reconnecting is simply
lost; a GET every second cannot miss a change, costs one round trip per second per process, and needs
no extra moving parts. A stale route is harmless anyway: any worker can run any tenant's task, and the
ledger's ``pending -> sending`` claim makes a task that arrives on the old queue after the move a no-op.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tenant_worker import constants
from tenant_worker.adapters.db import session_factory
from tenant_worker.adapters.orm import TenantRow
from tenant_worker.adapters.redis_client import redis_client
from tenant_worker.redis_settings import SentinelSettings


class TenantQueueCache:
    """tenant id -> queue, refreshed on a version change or after ``ttl`` seconds; thread-safe."""

    def __init__(
        self,
        lookup: Callable[[int], str | None],
        version: Callable[[], str | None],
        *,
        ttl: float = 60.0,
        check_every: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup, self._version, self._clock = lookup, version, clock
        self._ttl, self._check_every = ttl, check_every
        self._entries: dict[int, tuple[str, float]] = {}
        self._seen_version: str | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def queue_for(self, tenant_id: int) -> str | None:
        """The tenant's queue, or None for an unknown tenant (not cached, so a new tenant is found)."""
        now = self._clock()
        self._maybe_check_version(now)
        with self._lock:
            entry = self._entries.get(tenant_id)
        if entry is not None and now - entry[1] < self._ttl:
            return entry[0]
        queue = self._lookup(tenant_id)
        if queue is not None:
            with self._lock:
                self._entries[tenant_id] = (queue, now)
        return queue

    def invalidate(self) -> None:
        """Forget every cached route (this process just moved a tenant)."""
        with self._lock:
            self._entries.clear()

    def _maybe_check_version(self, now: float) -> None:
        with self._lock:
            if now - self._checked_at < self._check_every:
                return
            self._checked_at = now
        try:
            current = self._version()
        except (redis.RedisError, OSError):
            return  # Redis is down: publishing fails too; the TTL bounds staleness meanwhile.
        with self._lock:
            if current != self._seen_version:
                self._entries.clear()
                self._seen_version = current


def bump_routes_version(client: redis.Redis) -> None:
    """Tell every process's cache that some tenant's queue changed."""
    client.incr(constants.ROUTES_VERSION_KEY)


class TenantRouter:
    """A Celery router: tenant-scoped tasks to the tenant's queue, control tasks to the control queue.

    Connections are opened on first use, so building the Celery app (at import time) stays free of I/O.
    """

    def __init__(self, database_url: str, redis_url: str, sentinel: SentinelSettings | None = None) -> None:
        self._database_url, self._redis_url, self._sentinel = database_url, redis_url, sentinel
        self._cache: TenantQueueCache | None = None
        self._lock = threading.Lock()

    @property
    def cache(self) -> TenantQueueCache:
        """The route cache of this process, created on first use."""
        with self._lock:
            if self._cache is None:
                sessions = session_factory(self._database_url)
                client = redis_client(self._redis_url, self._sentinel, socket_timeout=2, socket_connect_timeout=2)
                self._cache = TenantQueueCache(_db_lookup(sessions), _redis_version(client))
            return self._cache

    def __repr__(self) -> str:
        # Shown by `celery report` and `celery inspect conf` (task_routes): no URL, so no password.
        return "<TenantRouter: tenant tasks to the tenant's stored queue>"

    def __call__(
        self, name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **_: Any
    ) -> dict[str, str] | None:
        """Celery's router signature; returns the destination queue or None for "not mine"."""
        if name in constants.CONTROL_TASKS:
            return {"queue": constants.CONTROL_QUEUE}
        if name in constants.TENANT_SCOPED_TASKS:
            if options and options.get("queue"):
                return None  # the publisher named the queue it just read from the tenant row: keep it
            tenant_id = args[0] if args else (kwargs or {}).get("tenant_id")
            queue = self.cache.queue_for(int(tenant_id)) if tenant_id is not None else None
            # An unknown tenant's task still runs (and fails visibly) on the control pool.
            return {"queue": queue or constants.DEFAULT_QUEUE}
        return None


def _db_lookup(sessions: sessionmaker[Session]) -> Callable[[int], str | None]:
    def lookup(tenant_id: int) -> str | None:
        with sessions() as session:
            return session.scalar(select(TenantRow.queue).where(TenantRow.id == tenant_id))

    return lookup


def _redis_version(client: redis.Redis) -> Callable[[], str | None]:
    def version() -> str | None:
        value = client.get(constants.ROUTES_VERSION_KEY)
        return value.decode() if isinstance(value, bytes) else None

    return version
