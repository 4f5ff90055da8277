"""The webhook replay store in memory (``adapters.messagebird_webhooks.RedisReplayGuard``'s twin)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence

from tenant_worker.domain.ports import SignedToken, replay_ttl


class MemoryReplayGuard:
    """``domain.ports.ReplayGuard``: token ids with when they may be forgotten."""

    def __init__(self) -> None:
        self.seen: dict[str, dt.datetime] = {}
        self._lock = threading.Lock()

    def first_use(self, tokens: Sequence[SignedToken], now: dt.datetime) -> list[bool]:
        """Remember each id unless it is remembered and not expired yet."""
        fresh = []
        with self._lock:
            for token in tokens:
                until = self.seen.get(token.token_id)
                fresh.append(until is None or until <= now)
                if fresh[-1]:
                    self.seen[token.token_id] = now + dt.timedelta(seconds=replay_ttl(token, now))
        return fresh

    def forget(self, tokens: Sequence[SignedToken]) -> None:
        """Forget the ids."""
        with self._lock:
            for token in tokens:
                self.seen.pop(token.token_id, None)
