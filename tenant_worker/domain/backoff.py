"""Retry delays for transient gateway errors: exponential backoff with jitter, capped."""

from __future__ import annotations

import random


def retry_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait before attempt ``attempt + 1``.

    "Equal jitter": half of the exponential step is fixed, half random, so retries after a 429 never
    come back at once (no thundering herd) yet always wait a meaningful time. Never exceeds ``cap``.
    """
    step = min(cap, base * 2.0 ** min(max(0, attempt - 1), 60))
    jitter: float = (rng or random.Random()).uniform(0, step / 2)
    return step / 2 + jitter
