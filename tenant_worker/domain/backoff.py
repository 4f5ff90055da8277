"""Retry delays: one policy type, exponential backoff with jitter, and the named policies that use it.

Every retry in tenant-worker is one of these objects, so how long anything waits after a failure is
read in one place: the send retries (``Settings.send_retry``), a send task waiting out a database
failover (``Settings.record_retry``), a worker reconnecting to Redis, a publish to a broker that
hiccups, and beat reconnecting to its Redis.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any


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
    """How something transient is retried: the first delay, the cap on any delay, and when to stop
    (after ``give_up_after`` seconds in all, or ``max_retries`` retries; None: the caller decides)."""

    base: float
    cap: float
    give_up_after: float | None = None
    max_retries: int | None = None

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return retry_delay(attempt, self.base, self.cap, rng)

    def kombu_options(self) -> dict[str, Any]:
        """The policy as kombu's ``retry_policy``/``ensure`` options. Kombu grows intervals linearly
        (``base``, ``2 x base``, ... up to ``cap``) and without jitter: close enough for its few retries."""
        return {
            "interval_start": self.base,
            "interval_step": self.base,
            "interval_max": self.cap,
            "max_retries": self.max_retries,
        }


# A database connection that dropped (failover, pg_terminate_backend): 0.1 s doubling to 5 s.
DATABASE_RECONNECT = RetryPolicy(base=0.1, cap=5.0)
# A worker that lost Redis: every 1-2 s (kombu's default grows to 30 s, so a worker would stay idle
# up to 30 s after Redis is back). Forever unless BROKER_CONNECTION_MAX_RETRIES says otherwise.
BROKER_RECONNECT = RetryPolicy(base=1.0, cap=2.0)
# Publishing a task: two quick retries, then the ledger keeps the reminders pending for the
# recovery tick (a sweep or a continuation must not hang on a dead broker).
BROKER_PUBLISH = RetryPolicy(base=0.3, cap=1.0, max_retries=2)
# Beat lost its Redis: from half a second, capped at beat's own loop interval (set where it is known).
BEAT_RECONNECT = RetryPolicy(base=0.5, cap=5.0)
