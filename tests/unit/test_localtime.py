"""Tenant-local daily runs and sending windows: a table of zones and DST dates, then properties."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tenant_worker.domain.localtime import (
    local_instant,
    next_local_run,
    next_local_runs,
    parse_hhmm,
    parse_window,
)

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


# zone, send time, "after" instant, expected next run (as an ISO instant with the local offset)
TABLE = [
    # An ordinary day, then the same wall time either side of both of Berlin's DST changes.
    ("Europe/Berlin", "10:00", "2026-01-15T12:00Z", "2026-01-16T10:00+01:00"),
    ("Europe/Berlin", "10:00", "2026-03-28T12:00Z", "2026-03-29T10:00+02:00"),
    ("Europe/Berlin", "10:00", "2026-10-24T12:00Z", "2026-10-25T10:00+01:00"),
    # Spring-forward: 02:30 does not exist on 29 March; it fires once, when the clock reaches 03:00.
    ("Europe/Berlin", "02:30", "2026-03-28T12:00Z", "2026-03-29T03:00+02:00"),
    ("Europe/Berlin", "02:30", "2026-03-29T01:00Z", "2026-03-30T02:30+02:00"),
    # Fall-back: 02:30 happens twice on 25 October; only the first counts.
    ("Europe/Berlin", "02:30", "2026-10-24T12:00Z", "2026-10-25T02:30+02:00"),
    ("Europe/Berlin", "02:30", "2026-10-25T00:30Z", "2026-10-26T02:30+01:00"),
    # Half-hour zone without DST.
    ("Asia/Kolkata", "10:00", "2026-06-01T00:00Z", "2026-06-01T10:00+05:30"),
    ("Asia/Kolkata", "10:00", "2026-06-01T04:30Z", "2026-06-02T10:00+05:30"),
    # Southern hemisphere, half-hour offset: DST starts in October and ends in April.
    ("Australia/Adelaide", "10:00", "2026-10-03T12:00Z", "2026-10-04T10:00+10:30"),
    ("Australia/Adelaide", "02:15", "2026-10-03T12:00Z", "2026-10-04T03:00+10:30"),
    ("Australia/Adelaide", "10:00", "2026-04-04T12:00Z", "2026-04-05T10:00+09:30"),
    ("Australia/Adelaide", "02:30", "2026-04-04T12:00Z", "2026-04-05T02:30+10:30"),
    # Santiago jumps at midnight: 00:30 does not exist on the first Sunday of September.
    ("America/Santiago", "00:30", "2026-09-05T12:00Z", "2026-09-06T01:00-03:00"),
    ("America/Santiago", "10:00", "2026-04-04T14:00Z", "2026-04-05T10:00-04:00"),
    # New York and Auckland on their change days.
    ("America/New_York", "02:30", "2026-03-07T12:00Z", "2026-03-08T03:00-04:00"),
    ("America/New_York", "01:30", "2026-11-01T00:00Z", "2026-11-01T01:30-04:00"),
    ("Pacific/Auckland", "02:30", "2026-09-26T00:00Z", "2026-09-27T03:00+13:00"),
    # Lord Howe moves by half an hour.
    ("Australia/Lord_Howe", "02:15", "2026-10-03T00:00Z", "2026-10-04T02:30+11:00"),
]


@pytest.mark.parametrize(("zone", "send", "after", "expected"), TABLE)
def test_next_run_is_the_tenants_wall_time_across_dst_changes(zone: str, send: str, after: str, expected: str) -> None:
    assert next_local_run(at(after), zone, parse_hhmm(send)) == at(expected)


def test_a_fall_back_day_fires_exactly_once() -> None:
    runs = next_local_runs(at("2026-10-24T12:00Z"), "Europe/Berlin", parse_hhmm("02:30"), 3)
    local_days = [r.astimezone(zoneinfo.ZoneInfo("Europe/Berlin")).date().isoformat() for r in runs]
    assert local_days == ["2026-10-25", "2026-10-26", "2026-10-27"]


def test_a_whole_year_has_one_run_per_local_day_in_every_sample_zone() -> None:
    for zone in ("Europe/Berlin", "America/Santiago", "Australia/Adelaide", "Asia/Kolkata", "America/New_York"):
        runs = next_local_runs(at("2025-12-31T23:59Z"), zone, parse_hhmm("02:30"), 400)
        days = [r.astimezone(zoneinfo.ZoneInfo(zone)).date() for r in runs]
        assert len(set(days)) == len(days), zone


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_local_run(dt.datetime(2026, 1, 1), "Europe/Berlin", dt.time(10))  # noqa: DTZ001


@pytest.mark.parametrize("text", ["24:00", "9:00", "10:60", "10", "ten", ""])
def test_malformed_send_times_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="HH:MM"):
        parse_hhmm(text)


WINDOW_TABLE = [
    ("08:00-21:00", "Europe/Amsterdam", "2026-06-01T05:59Z", False),
    ("08:00-21:00", "Europe/Amsterdam", "2026-06-01T06:00Z", True),
    ("08:00-21:00", "Europe/Amsterdam", "2026-06-01T19:00Z", False),
    ("08:00-21:00", "Asia/Kolkata", "2026-06-01T15:30Z", False),
    ("22:00-06:00", "Europe/Amsterdam", "2026-06-01T23:00Z", True),
    ("22:00-06:00", "Europe/Amsterdam", "2026-06-01T10:00Z", False),
    # The window starts inside the hour the clock skips (Berlin, 29 March 2026): closed before the
    # jump, open as soon as the clock reads 03:00.
    ("02:30-21:00", "Europe/Berlin", "2026-03-28T23:00Z", False),
    ("02:30-21:00", "Europe/Berlin", "2026-03-29T01:00Z", True),
]


@pytest.mark.parametrize(("window", "zone", "now", "is_open"), WINDOW_TABLE)
def test_sending_window_is_evaluated_on_the_tenants_clock(window: str, zone: str, now: str, is_open: bool) -> None:
    assert parse_window(window).is_open(at(now), zone) is is_open


def test_a_window_that_starts_when_it_ends_means_no_quiet_hours() -> None:
    window = parse_window("00:00-00:00")
    assert window.always_open
    assert all(window.is_open(at(f"2026-06-01T{hour:02d}:30Z"), "Europe/Berlin") for hour in range(24))


ZONES = sorted(zoneinfo.available_timezones() - {"Factory", "localtime"})
instants = st.datetimes(min_value=dt.datetime(1975, 1, 1), max_value=dt.datetime(2037, 12, 31), timezones=st.just(UTC))  # noqa: DTZ001
times = st.times().map(lambda t: t.replace(second=0, microsecond=0))


@hsettings(max_examples=400, deadline=None)
@given(zone=st.sampled_from(ZONES), after=instants, send=times)
def test_next_run_is_soon_after_and_on_the_wall_clock_or_at_the_end_of_a_gap(
    zone: str, after: dt.datetime, send: dt.time
) -> None:
    tz = zoneinfo.ZoneInfo(zone)
    run = next_local_run(after, zone, send)
    assert after < run <= after + dt.timedelta(hours=50)
    wall = run.astimezone(tz)
    if wall.time().replace(tzinfo=None) != send:
        # Only possible when the send time did not exist that day: the clock jumped over it at `run`.
        before = (run - dt.timedelta(seconds=1)).astimezone(tz)
        assert before.utcoffset() != wall.utcoffset()
        assert before.time() < send < wall.time() or before.date() != wall.date() or wall.time() < send


def intended_day(run: dt.datetime, zone: str, send: dt.time) -> dt.date:
    """The local date whose run ``run`` is (the day before, when a gap pushed it past midnight)."""
    tz = zoneinfo.ZoneInfo(zone)
    day = run.astimezone(tz).date()
    return day if local_instant(day, send, tz) == run else day - dt.timedelta(days=1)


@hsettings(max_examples=300, deadline=None)
@given(zone=st.sampled_from(ZONES), after=instants, send=times)
def test_consecutive_runs_belong_to_consecutive_local_days(zone: str, after: dt.datetime, send: dt.time) -> None:
    first = next_local_run(after, zone, send)
    # Asking again from just before the run finds the same run: nothing between `after` and it.
    assert next_local_run(first - dt.timedelta(microseconds=1), zone, send) == first
    second = next_local_run(first, zone, send)
    day_one, day_two = intended_day(first, zone, send), intended_day(second, zone, send)
    assert local_instant(day_one, send, zoneinfo.ZoneInfo(zone)) == first
    # One run per local day: never the same day twice (fall-back), never a day missed (spring-forward).
    assert day_two == day_one + dt.timedelta(days=1) or (
        # ...except a day the zone skipped entirely (Samoa, 30 December 2011), whose run is the jump.
        day_two == day_one + dt.timedelta(days=2)
        and local_instant(day_one + dt.timedelta(days=1), send, zoneinfo.ZoneInfo(zone)) == first
    )
