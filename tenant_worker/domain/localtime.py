"""Tenant-local wall-clock maths: daily send instants and the allowed sending window, DST-correct.

A tenant says "10:00" and means 10:00 on *its* clock, every day, whatever the offset that day. Fixed
offsets and cron expressions evaluated in UTC drift by an hour twice a year, so every instant is
derived from the IANA zone here, with two rules for the days a clock jumps:

* spring-forward: a wall time inside the skipped hour fires once, at the first instant after the gap
  (02:30 on a day that jumps 02:00 -> 03:00 fires at 03:00);
* fall-back: a wall time that occurs twice fires once, at its first occurrence.

Standard library only, so it is testable with nothing running.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass

_UTC = dt.UTC
_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


def parse_hhmm(text: str) -> dt.time:
    """``"10:00"`` -> ``time(10, 0)``; anything else raises ``ValueError`` with a readable reason."""
    match = _HHMM.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a time like 10:00 (24-hour HH:MM)")
    return dt.time(int(match.group(1)), int(match.group(2)))


def format_hhmm(value: dt.time) -> str:
    """``time(9, 5)`` -> ``"09:05"``."""
    return f"{value.hour:02d}:{value.minute:02d}"


def _wall(instant: dt.datetime, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def local_instant(day: dt.date, at: dt.time, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """The UTC instant of wall time ``at`` on local ``day``, following the module's DST rules."""
    wall = dt.datetime.combine(day, at)
    first = wall.replace(tzinfo=zone, fold=0).astimezone(_UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(_UTC)
    early, late = min(first, second), max(first, second)
    if _wall(early, zone) == wall:
        # Exists (once, or twice on a fall-back day: the earlier one wins).
        return early
    # Inside a gap: ``early`` reads before the jump and ``late`` after it; find the jump itself to
    # the second (tzdata transitions are whole seconds, so this is exact).
    lo, hi = early, late
    while hi - lo > dt.timedelta(seconds=1):
        mid = lo + (hi - lo) // 2
        mid = mid.replace(microsecond=0)
        if _wall(mid, zone) >= wall:
            hi = mid
        else:
            lo = mid
    return hi


def next_local_run(after: dt.datetime, tz: str, send_time: dt.time) -> dt.datetime:
    """The first daily run strictly after ``after`` (an aware instant), as an aware UTC datetime.

    Each local date has exactly one run (see :func:`local_instant`), so a schedule built on this
    fires once a day on DST days too.
    """
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    zone = zoneinfo.ZoneInfo(tz)
    day = after.astimezone(zone).date() - dt.timedelta(days=1)
    while True:
        candidate = local_instant(day, send_time, zone)
        if candidate > after:
            return candidate
        day += dt.timedelta(days=1)


def next_local_runs(after: dt.datetime, tz: str, send_time: dt.time, count: int) -> list[dt.datetime]:
    """The next ``count`` runs after ``after`` (for ``schedule show --from``)."""
    runs: list[dt.datetime] = []
    for _ in range(count):
        after = next_local_run(after, tz, send_time)
        runs.append(after)
    return runs


ALWAYS_OPEN_TEXT = "00:00-00:00"


@dataclass(frozen=True)
class SendingWindow:
    """The local hours in which a tenant's SMS may go out; ``start > end`` spans midnight and
    ``start == end`` (written ``00:00-00:00``) means no quiet hours at all."""

    start: dt.time = dt.time(8, 0)
    end: dt.time = dt.time(21, 0)

    @property
    def always_open(self) -> bool:
        """True when the tenant has no quiet hours."""
        return self.start == self.end

    def contains(self, local: dt.time) -> bool:
        """Whether wall time ``local`` is inside the window (start inclusive, end exclusive)."""
        if self.always_open:
            return True
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def is_open(self, now: dt.datetime, tz: str) -> bool:
        """Whether the window is open at instant ``now`` on the tenant's clock."""
        return self.contains(now.astimezone(zoneinfo.ZoneInfo(tz)).time())

    def __str__(self) -> str:
        return f"{format_hhmm(self.start)}-{format_hhmm(self.end)}"


def parse_window(text: str) -> SendingWindow:
    """``"08:00-21:00"`` -> :class:`SendingWindow`; raises ``ValueError`` explaining the format."""
    start, sep, end = text.partition("-")
    if not sep:
        raise ValueError(f"{text!r} is not a window like 08:00-21:00")
    return SendingWindow(parse_hhmm(start), parse_hhmm(end))
