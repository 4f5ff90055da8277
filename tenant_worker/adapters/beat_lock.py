"""Beat's leader lock in Redis: one key holding the leader's token, with a lease that it renews.

RedBeat's own lock is a redis-py ``Lock`` taken in a blocking loop from the ``beat_init`` signal; a
Redis error inside that loop is swallowed by Celery's signal dispatch and the next tick then dies. Here
the scheduler takes and renews the lock itself on every tick (see ``adapters/redbeat.py``), with three
non-blocking commands on the same key RedBeat uses.

The token names the process (``host:pid:random``), so ``GET tenant_worker:beat::lock`` tells an operator
which beat leads, and it stays the same for the life of the process: when Redis comes back from its
append-only file with the lock restored, the beat that held it recognises its own token and goes on
leading at once instead of waiting for the restored lease to expire.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any

# Renew the lease only if the key still holds our token (a missing key or another beat's token: 0).
_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
# Delete the key only if it still holds our token.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


def process_token() -> str:
    """A token unique to this process that also says where it runs: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class RedisLeaderLock:
    """A lease on ``key``: ``acquire`` takes it if free, ``extend`` renews it if still ours.

    ``client`` must decode responses (RedBeat's client does). Redis errors propagate: whether to wait,
    retry or stand by is the scheduler's decision.
    """

    def __init__(self, client: Any, key: str, timeout: float, token: str | None = None) -> None:
        self.client, self.key = client, key
        self.timeout_ms = int(timeout * 1000)
        self.token = token or process_token()
        self._extend = client.register_script(_EXTEND)
        self._release = client.register_script(_RELEASE)

    def acquire(self) -> bool:
        """SET NX with the lease: True if this process holds the lock now."""
        return bool(self.client.set(self.key, self.token, nx=True, px=self.timeout_ms))

    def extend(self) -> bool:
        """Renew the lease to the full timeout; False if the key is gone or holds another token."""
        return bool(self._extend(keys=[self.key], args=[self.token, self.timeout_ms]))

    def holder(self) -> str | None:
        """The token of the beat that holds the lock, or None when nobody does."""
        value = self.client.get(self.key)
        return None if value is None else str(value)

    def release(self) -> bool:
        """Give the lock up (a standby can take over at once); True if it was ours."""
        return bool(self._release(keys=[self.key], args=[self.token]))
