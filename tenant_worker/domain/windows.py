"""The reminder-window rule: which reminder, if any, is due for a subscription on a given local date.

This is the contract users rely on. On tenant-local date ``today``, for a subscription expiring on
``expires_on`` with reminder windows ``windows`` and the set ``recorded`` of windows already in the
ledger for that (subscription, expires_on):

* ``days_left = expires_on - today``; if ``days_left < 1`` or ``days_left > max(windows)``: nothing;
* else the due window is the smallest ``w`` in ``windows`` with ``w >= days_left``;
* it is created unless ``w`` or any smaller window is already recorded (a late replay never goes
  backwards to an earlier, larger window).

So daily sweeps send each window exactly once on its day, a missed day is caught up once (late) and
never doubled, re-running any date is harmless, and a renewal (a new ``expires_on``) starts afresh.
The SQL claim in ``adapters.repository`` implements exactly this rule set-wise; the property tests
check the two agree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable

DEFAULT_WINDOWS: tuple[int, ...] = (5, 3, 1)
MAX_WINDOW_DAYS = 60


class WindowsError(ValueError):
    """Reminder windows are malformed."""


def normalize_windows(windows: Iterable[int]) -> tuple[int, ...]:
    """Validate windows and return them distinct and in descending order (how users write them)."""
    result = tuple(sorted(set(windows), reverse=True))
    if not result:
        raise WindowsError("at least one reminder window is required")
    if any(w < 1 or w > MAX_WINDOW_DAYS for w in result):
        raise WindowsError(f"reminder windows must be whole days between 1 and {MAX_WINDOW_DAYS}")
    return result


def parse_windows(text: str) -> tuple[int, ...]:
    """Parse ``"5,3,1"`` into windows, with a clear error for anything else."""
    try:
        return normalize_windows(int(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        if isinstance(exc, WindowsError):
            raise
        raise WindowsError(f"reminder windows must be comma-separated whole days, not {text!r}") from None


def due_window(today: dt.date, expires_on: dt.date, windows: Collection[int], recorded: Collection[int]) -> int | None:
    """Return the window to record for this subscription on ``today``, or None when nothing is due."""
    if not windows:
        return None
    days_left = (expires_on - today).days
    if days_left < 1 or days_left > max(windows):
        return None
    window = min(w for w in windows if w >= days_left)
    if any(r <= window for r in recorded):
        return None
    return window
