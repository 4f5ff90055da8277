"""Retry delays: exponential backoff with jitter, capped, and the policies that use it."""

from __future__ import annotations

import random
from dataclasses import dataclass


def retry_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait before attempt ``attempt + 1``.

    "Equal jitter": half of the exponential step is fixed, half random, so retries after a 429 never
    come back at once (no thundering herd) yet always wait a meaningful time. Never exceeds ``cap``.
    """
    step = min(cap, base * 2.0 ** min(max(0, attempt - 1), 60))
    jitter: float = (rng or random.Random()).uniform(0, step / 2)
    return step / 2 + jitter


@dataclass(frozen=True)
class RetryPolicy:
    """How something transient is retried: the first delay, the cap on any delay, and for how long
    in all (``give_up_after`` seconds; None: the caller counts attempts itself)."""

    base: float
    cap: float
    give_up_after: float | None = None

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return retry_delay(attempt, self.base, self.cap, rng)


# A database connection that dropped (failover, pg_terminate_backend): 0.1 s doubling to 5 s.
DATABASE_RECONNECT = RetryPolicy(base=0.1, cap=5.0)
