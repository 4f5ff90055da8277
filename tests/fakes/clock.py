"""A clock the test drives: waiting advances it instead of passing real time, so a service that sleeps
until a rate-limit slot or backs off before a retry runs in microseconds and its waits can be asserted."""

from __future__ import annotations

import datetime as dt
import threading

DEFAULT_START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


class FakeClock:
    """``domain.ports.Clock`` in memory; thread-safe, as a batch's send threads share one clock.

    ``now()`` and ``monotonic()`` move together: :meth:`sleep` and :meth:`advance` move both, and
    nothing else does. ``sleeps`` keeps every positive wait asked for, in order."""

    def __init__(self, start: dt.datetime = DEFAULT_START, monotonic: float = 1000.0) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware start (the services compare with UTC instants)")
        self._lock = threading.Lock()
        self._now = start.astimezone(dt.UTC)
        self._monotonic = monotonic
        self.sleeps: list[float] = []

    def now(self) -> dt.datetime:
        """The current fake instant, aware, in UTC."""
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        """Seconds on the fake monotonic clock."""
        with self._lock:
            return self._monotonic

    def sleep(self, seconds: float) -> None:
        """Advance by ``seconds`` at once (a zero or negative wait returns, as ``SystemClock`` does)."""
        if seconds > 0:
            with self._lock:
                self.sleeps.append(seconds)
                self._move(seconds)

    def advance(self, by: float | dt.timedelta) -> dt.datetime:
        """Let ``by`` seconds (or a timedelta) pass without anyone sleeping; returns the new now."""
        seconds = by.total_seconds() if isinstance(by, dt.timedelta) else by
        if seconds < 0:
            raise ValueError("a clock never goes back")
        with self._lock:
            self._move(seconds)
            return self._now

    def set(self, instant: dt.datetime) -> None:
        """Jump forward to ``instant`` (a new local day for a sweep, say)."""
        with self._lock:
            seconds = (instant - self._now).total_seconds()
            if seconds < 0:
                raise ValueError("a clock never goes back")
            self._move(seconds)

    @property
    def slept(self) -> float:
        """Seconds slept in total."""
        with self._lock:
            return sum(self.sleeps)

    def _move(self, seconds: float) -> None:
        self._now += dt.timedelta(seconds=seconds)
        self._monotonic += seconds
