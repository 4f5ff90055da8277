"""The reminder-window rule: which reminder a sweep records on a given local date, and that daily,
repeated, shuffled or gappy sweeps never send a reminder twice nor go backwards.

The properties drive ``due_window`` through a small in-memory ledger, the same way a sweep does: for each
(subscription, expires_on) it asks the rule what is due and records what the rule returns.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenant_worker.domain.windows import (
    DEFAULT_WINDOWS,
    MAX_WINDOW_DAYS,
    WindowsError,
    due_window,
    normalize_windows,
    parse_windows,
)

EXPIRES_ON = dt.date(2026, 3, 10)
DAY = dt.timedelta(days=1)

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None)


def days_before(days_left: int, expires_on: dt.date = EXPIRES_ON) -> dt.date:
    """The local date on which ``expires_on`` is ``days_left`` days away."""
    return expires_on - days_left * DAY


@dataclass
class Ledger:
    """In-memory reminder ledger: (subscription, expires_on) -> {window: date it was recorded}."""

    windows: tuple[int, ...]
    entries: dict[tuple[str, dt.date], dict[int, dt.date]] = field(default_factory=dict)
    log: list[tuple[str, dt.date, int, dt.date]] = field(default_factory=list)

    def sweep(self, today: dt.date, subscriptions: dict[str, dt.date]) -> list[tuple[str, int]]:
        """Record whatever the rule says is due on ``today``; return (subscription, window) created."""
        created: list[tuple[str, int]] = []
        for subscription, expires_on in subscriptions.items():
            recorded = self.entries.setdefault((subscription, expires_on), {})
            window = due_window(today, expires_on, self.windows, recorded.keys())
            if window is None:
                continue
            # The ledger's unique key would make a duplicate a silent no-op; the rule must not even ask.
            assert window not in recorded, f"rule returned already-recorded window {window} on {today}"
            recorded[window] = today
            self.log.append((subscription, expires_on, window, today))
            created.append((subscription, window))
        return created


# Strategies ------------------------------------------------------------------------------------------

windows_strategy = st.sets(st.integers(min_value=1, max_value=30), min_size=1, max_size=8).map(
    lambda ws: tuple(sorted(ws, reverse=True))
)
subscriptions_strategy = st.dictionaries(
    keys=st.sampled_from([f"sub-{i}" for i in range(6)]),
    values=st.integers(min_value=-5, max_value=40).map(lambda offset: EXPIRES_ON + offset * DAY),
    min_size=1,
    max_size=4,
)


# The rule as a table ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days_left", "windows", "recorded", "expected"),
    [
        # Default windows 5, 3, 1 on a fresh subscription.
        pytest.param(6, (5, 3, 1), set(), None, id="6-days-left-is-before-the-first-window"),
        pytest.param(5, (5, 3, 1), set(), 5, id="5-days-left-sends-window-5"),
        pytest.param(4, (5, 3, 1), set(), 5, id="4-days-left-catches-up-missed-window-5"),
        pytest.param(3, (5, 3, 1), set(), 3, id="3-days-left-sends-window-3"),
        pytest.param(2, (5, 3, 1), set(), 3, id="2-days-left-catches-up-missed-window-3"),
        pytest.param(1, (5, 3, 1), set(), 1, id="1-day-left-sends-window-1"),
        pytest.param(0, (5, 3, 1), set(), None, id="expiry-day-sends-nothing"),
        pytest.param(-1, (5, 3, 1), set(), None, id="after-expiry-sends-nothing"),
        # What is already in the ledger.
        pytest.param(5, (5, 3, 1), {5}, None, id="window-5-already-sent"),
        pytest.param(4, (5, 3, 1), {5}, None, id="day-after-window-5-sends-nothing-more"),
        pytest.param(3, (5, 3, 1), {5}, 3, id="window-3-after-window-5"),
        pytest.param(2, (5, 3, 1), {5, 3}, None, id="day-after-window-3-sends-nothing-more"),
        pytest.param(1, (5, 3, 1), {5, 3}, 1, id="window-1-after-windows-5-and-3"),
        pytest.param(1, (5, 3, 1), {5, 3, 1}, None, id="all-windows-sent"),
        pytest.param(5, (5, 3, 1), {3}, None, id="late-replay-never-goes-back-to-window-5"),
        pytest.param(3, (5, 3, 1), {1}, None, id="late-replay-never-goes-back-to-window-3"),
        pytest.param(1, (5, 3, 1), {3}, 1, id="window-1-even-if-window-5-was-missed"),
        # Custom windows.
        pytest.param(8, (7, 2), set(), None, id="custom-8-days-left-is-too-early"),
        pytest.param(7, (7, 2), set(), 7, id="custom-7-days-left-sends-window-7"),
        pytest.param(3, (7, 2), set(), 7, id="custom-3-days-left-catches-up-window-7"),
        pytest.param(3, (7, 2), {7}, None, id="custom-between-windows-sends-nothing"),
        pytest.param(2, (7, 2), {7}, 2, id="custom-2-days-left-sends-window-2"),
        pytest.param(1, (7, 2), {7}, 2, id="custom-1-day-left-catches-up-window-2"),
        pytest.param(1, (7, 2), {7, 2}, None, id="custom-all-windows-sent"),
        pytest.param(1, (2, 7), set(), 2, id="windows-in-any-order"),
        pytest.param(30, (30,), set(), 30, id="single-window"),
        pytest.param(1, (), set(), None, id="no-windows-sends-nothing"),
    ],
)
def test_due_window_follows_the_documented_rule(
    days_left: int, windows: tuple[int, ...], recorded: set[int], expected: int | None
) -> None:
    assert due_window(days_before(days_left), EXPIRES_ON, windows, recorded) == expected


def test_renewal_with_a_new_expiry_date_starts_a_fresh_cycle() -> None:
    ledger = Ledger(DEFAULT_WINDOWS)
    renewed_on = EXPIRES_ON + dt.timedelta(days=30)
    start, end = days_before(10), days_before(-1, renewed_on)
    today = start
    while today <= end:
        # The customer renews on the old expiry day; the import replaces expires_on.
        ledger.sweep(today, {"sub-1": EXPIRES_ON if today < EXPIRES_ON else renewed_on})
        today += DAY

    assert ledger.entries[("sub-1", EXPIRES_ON)] == {w: days_before(w) for w in DEFAULT_WINDOWS}
    assert ledger.entries[("sub-1", renewed_on)] == {w: days_before(w, renewed_on) for w in DEFAULT_WINDOWS}


def test_renewal_is_not_blocked_by_reminders_of_the_previous_cycle() -> None:
    renewed_on = EXPIRES_ON + dt.timedelta(days=30)
    old_cycle = {5, 3, 1}
    assert due_window(days_before(5, EXPIRES_ON), EXPIRES_ON, DEFAULT_WINDOWS, old_cycle) is None
    assert due_window(days_before(5, renewed_on), renewed_on, DEFAULT_WINDOWS, set()) == 5


def test_missed_sweep_day_is_caught_up_once_late_and_the_next_window_still_arrives() -> None:
    ledger = Ledger(DEFAULT_WINDOWS)
    subscriptions = {"sub-1": EXPIRES_ON}

    for days_left in (6, 5, 4, 2, 1, 0):  # the sweep on the 3-days-left date never ran
        ledger.sweep(days_before(days_left), subscriptions)

    assert ledger.entries[("sub-1", EXPIRES_ON)] == {5: days_before(5), 3: days_before(2), 1: days_before(1)}


def test_second_sweep_on_the_same_day_sends_nothing() -> None:
    ledger = Ledger(DEFAULT_WINDOWS)
    subscriptions = {"sub-1": EXPIRES_ON, "sub-2": EXPIRES_ON + 2 * DAY}

    first = ledger.sweep(days_before(3), subscriptions)
    second = ledger.sweep(days_before(3), subscriptions)

    assert first == [("sub-1", 3), ("sub-2", 5)]
    assert second == []


# Properties ------------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(
    windows=windows_strategy,
    recorded=st.sets(st.integers(min_value=1, max_value=MAX_WINDOW_DAYS), max_size=6),
    days_left=st.integers(min_value=-3, max_value=35),
)
def test_rule_never_returns_a_window_already_recorded_or_an_earlier_larger_one(
    windows: tuple[int, ...], recorded: set[int], days_left: int
) -> None:
    window = due_window(days_before(days_left), EXPIRES_ON, windows, recorded)
    if window is not None:
        assert window in windows
        assert window not in recorded
        assert all(r > window for r in recorded), "a late replay went back to a larger window"
        assert window >= days_left, "a window was sent after its day had passed and a smaller one was due"


@PROPERTY_SETTINGS
@given(windows=windows_strategy, days_left=st.one_of(st.integers(-40, 0), st.integers(31, 120)))
def test_nothing_is_due_on_or_after_expiry_or_before_the_largest_window(
    windows: tuple[int, ...], days_left: int
) -> None:
    assert due_window(days_before(days_left), EXPIRES_ON, windows, set()) is None


@PROPERTY_SETTINGS
@given(windows=windows_strategy, extra=st.integers(min_value=1, max_value=10))
def test_nothing_is_due_more_days_ahead_than_the_largest_window(windows: tuple[int, ...], extra: int) -> None:
    assert due_window(days_before(max(windows) + extra), EXPIRES_ON, windows, set()) is None


@PROPERTY_SETTINGS
@given(
    windows=windows_strategy,
    subscriptions=subscriptions_strategy,
    lead_in=st.integers(min_value=0, max_value=5),
    tail=st.integers(min_value=0, max_value=5),
)
def test_daily_sweeps_send_each_window_exactly_once_on_its_day(
    windows: tuple[int, ...], subscriptions: dict[str, dt.date], lead_in: int, tail: int
) -> None:
    ledger = Ledger(windows)
    start = min(subscriptions.values()) - (max(windows) + lead_in) * DAY
    end = max(subscriptions.values()) + tail * DAY
    today = start
    while today <= end:
        ledger.sweep(today, subscriptions)
        today += DAY

    for subscription, expires_on in subscriptions.items():
        assert ledger.entries[(subscription, expires_on)] == {w: days_before(w, expires_on) for w in windows}


@PROPERTY_SETTINGS
@given(
    windows=windows_strategy,
    subscriptions=subscriptions_strategy,
    offsets=st.lists(st.integers(min_value=-35, max_value=45), min_size=1, max_size=60),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    repeats=st.integers(min_value=1, max_value=3),
)
def test_sweeps_in_any_order_and_repetition_never_double_send_nor_go_backwards(
    windows: tuple[int, ...],
    subscriptions: dict[str, dt.date],
    offsets: list[int],
    seed: int,
    repeats: int,
) -> None:
    dates = [EXPIRES_ON + offset * DAY for offset in offsets] * repeats
    random.Random(seed).shuffle(dates)
    ledger = Ledger(windows)

    for today in dates:
        ledger.sweep(today, subscriptions)

    per_window = Counter((sub, expires_on, window) for sub, expires_on, window, _ in ledger.log)
    assert all(count == 1 for count in per_window.values()), "a window was recorded twice"
    per_day = Counter((sub, today) for sub, _, _, today in ledger.log)
    assert all(count == 1 for count in per_day.values()), "a subscription got two reminders on one local day"
    for subscription, expires_on in subscriptions.items():
        sent = [window for sub, exp, window, _ in ledger.log if (sub, exp) == (subscription, expires_on)]
        assert sent == sorted(sent, reverse=True), f"went backwards: {sent}"
        for window, on in ledger.entries[(subscription, expires_on)].items():
            assert 1 <= (expires_on - on).days <= window, "recorded outside the window's catch-up range"


@PROPERTY_SETTINGS
@given(
    windows=windows_strategy,
    subscriptions=subscriptions_strategy,
    offsets=st.lists(st.integers(min_value=-35, max_value=45), min_size=1, max_size=30, unique=True),
)
def test_sweeping_any_date_a_second_time_creates_nothing(
    windows: tuple[int, ...], subscriptions: dict[str, dt.date], offsets: list[int]
) -> None:
    ledger = Ledger(windows)
    for offset in offsets:
        today = EXPIRES_ON + offset * DAY
        ledger.sweep(today, subscriptions)
        assert ledger.sweep(today, subscriptions) == []


@PROPERTY_SETTINGS
@given(windows=windows_strategy, skipped_days_left=st.integers(min_value=1, max_value=30))
def test_a_missed_day_loses_nothing_but_the_window_overtaken_by_a_smaller_one(
    windows: tuple[int, ...], skipped_days_left: int
) -> None:
    ledger = Ledger(windows)
    for days_left in range(max(windows) + 2, -2, -1):
        if days_left != skipped_days_left:
            ledger.sweep(days_before(days_left), {"sub-1": EXPIRES_ON})

    expected = {w: days_before(w) for w in windows}
    if skipped_days_left in windows:
        late_days_left = skipped_days_left - 1
        del expected[skipped_days_left]
        if late_days_left >= 1 and late_days_left not in windows:
            expected[skipped_days_left] = days_before(late_days_left)  # caught up once, one day late
    assert ledger.entries[("sub-1", EXPIRES_ON)] == expected


# Parsing windows -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("5,3,1", (5, 3, 1), id="default"),
        pytest.param("1,3,5", (5, 3, 1), id="any-order"),
        pytest.param(" 7 , 2 ", (7, 2), id="spaces"),
        pytest.param("3,3,1", (3, 1), id="duplicates-collapse"),
        pytest.param("5,3,1,", (5, 3, 1), id="trailing-comma"),
        pytest.param(f"{MAX_WINDOW_DAYS},1", (MAX_WINDOW_DAYS, 1), id="bounds"),
    ],
)
def test_parse_windows_accepts_comma_separated_days(text: str, expected: tuple[int, ...]) -> None:
    assert parse_windows(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("5,x", "comma-separated whole days, not '5,x'", id="not-a-number"),
        pytest.param("5;3", "comma-separated whole days", id="wrong-separator"),
        pytest.param("1.5", "comma-separated whole days", id="fraction"),
        pytest.param("", "at least one reminder window", id="empty"),
        pytest.param(" , ", "at least one reminder window", id="only-commas"),
        pytest.param("0", f"between 1 and {MAX_WINDOW_DAYS}", id="zero"),
        pytest.param("-1", f"between 1 and {MAX_WINDOW_DAYS}", id="negative"),
        pytest.param("61", f"between 1 and {MAX_WINDOW_DAYS}", id="past-the-maximum"),
        pytest.param("5,3,61", f"between 1 and {MAX_WINDOW_DAYS}", id="one-bad-among-good"),
    ],
)
def test_parse_windows_rejects_malformed_text_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(WindowsError, match=message):
        parse_windows(text)


@pytest.mark.parametrize(
    "windows",
    [pytest.param((), id="empty"), pytest.param((0, 1), id="zero"), pytest.param((MAX_WINDOW_DAYS + 1,), id="too-big")],
)
def test_normalize_windows_rejects_invalid_windows(windows: tuple[int, ...]) -> None:
    with pytest.raises(WindowsError):
        normalize_windows(windows)


@PROPERTY_SETTINGS
@given(st.lists(st.integers(min_value=1, max_value=MAX_WINDOW_DAYS), min_size=1, max_size=10))
def test_parsed_windows_are_distinct_and_descending(windows: list[int]) -> None:
    parsed = parse_windows(",".join(map(str, windows)))
    assert parsed == tuple(sorted(set(windows), reverse=True))
    assert normalize_windows(parsed) == parsed
