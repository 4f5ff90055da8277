"""The webhook replay store in memory (``adapters.messagebird_webhooks.RedisReplayGuard``'s twin)."""

from __future__ import annotations

import datetime as dt
import threading

from tenant_worker.domain.ports import SYSTEM_CLOCK, Clock


class MemoryReplayGuard:
    """``domain.ports.ReplayGuard``: token ids with their expiry on ``clock``."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self.seen: dict[str, dt.datetime] = {}
        self._lock = threading.Lock()

    def first_use(self, token_id: str, ttl_seconds: int) -> bool:
        """Remember the id unless it is remembered and not expired yet."""
        now = self.clock.now()
        with self._lock:
            expires = self.seen.get(token_id)
            if expires is not None and expires > now:
                return False
            self.seen[token_id] = now + dt.timedelta(seconds=max(ttl_seconds, 1))
            return True

    def forget(self, token_id: str) -> None:
        """Forget the id."""
        with self._lock:
            self.seen.pop(token_id, None)
