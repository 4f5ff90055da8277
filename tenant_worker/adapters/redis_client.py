"""redis-py clients of tenant-worker's Redis: the server in ``REDIS_URL``, or the master Redis Sentinel
names (``redis_settings.py``).

A Sentinel client asks the sentinels for the master's address when it opens a connection, and a
connection error or a ``READONLY`` answer (the old master came back as a replica) drops its
connections, so the next command goes to whichever server the sentinels promoted.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.sentinel import Sentinel

from tenant_worker.config import url_password
from tenant_worker.redis_settings import SentinelSettings, redis_db


def redis_client(
    url: str, sentinel: SentinelSettings | None, *, pool_size: int | None = None, **options: Any
) -> redis.Redis:
    """A client of the Redis master; ``options`` are redis-py connection options (timeouts).

    ``pool_size`` bounds a direct client's pool, and a thread that finds every connection in use waits
    for one. Sentinel's pool cannot wait (it refuses the connection beyond its bound instead), so a
    Sentinel client's pool is not bounded: its connections are bounded by the threads that use it.
    """
    if sentinel is None:
        if pool_size is None:
            return redis.Redis.from_url(url, **options)
        pool = redis.BlockingConnectionPool.from_url(url, max_connections=pool_size, timeout=10, **options)
        return redis.Redis(connection_pool=pool)
    # redis-py's sentinel module has no type hints.
    kwargs = sentinel.sentinel_kwargs(options)
    manager = Sentinel(list(sentinel.nodes), sentinel_kwargs=kwargs, **options)  # type: ignore[no-untyped-call]
    password = url_password(url) or None
    client: redis.Redis = manager.master_for(sentinel.master, password=password, db=redis_db(url))  # type: ignore[no-untyped-call]
    return client
