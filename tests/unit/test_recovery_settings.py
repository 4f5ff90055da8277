"""The recovery settings refuse values that would let the recovery tick take rows from a live task, or
run it less often than once a minute."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenant_worker.config import ConfigurationError, load_settings

# Every setting the longest hold of a live task is made of, small enough for a test's stale threshold.
SHORT = {
    "RATE_WAIT_MAX_SECONDS": "1",
    "MESSAGEBIRD_CONNECT_TIMEOUT": "0.5",
    "MESSAGEBIRD_READ_TIMEOUT": "1.5",
    "RECORD_RETRY_SECONDS": "2",
}


def test_the_defaults_are_consistent() -> None:
    settings = load_settings({})
    held = settings.rate_wait_max_seconds + settings.http_connect_timeout + settings.http_read_timeout
    assert settings.stale_sending_seconds > held + settings.record_retry_seconds
    assert 0 < settings.recovery_interval_seconds <= 60


def test_stale_sending_must_exceed_the_longest_a_live_task_holds_a_row() -> None:
    assert load_settings({**SHORT, "STALE_SENDING_SECONDS": "6"}).stale_sending_seconds == 6
    with pytest.raises(ConfigurationError) as refused:
        load_settings({**SHORT, "STALE_SENDING_SECONDS": "5"})
    assert str(refused.value).startswith("STALE_SENDING_SECONDS must exceed")
    assert "(5 s)" in str(refused.value)


@pytest.mark.parametrize(
    "longer",
    [
        {"RATE_WAIT_MAX_SECONDS": "2"},
        {"MESSAGEBIRD_CONNECT_TIMEOUT": "1.5"},
        {"MESSAGEBIRD_READ_TIMEOUT": "2.5"},
        {"RECORD_RETRY_SECONDS": "3"},
    ],
    ids=lambda env: next(iter(env)),
)
def test_a_longer_hold_makes_the_same_stale_threshold_too_short(longer: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="STALE_SENDING_SECONDS"):
        load_settings({**SHORT, **longer, "STALE_SENDING_SECONDS": "6"})


def test_the_default_stale_threshold_refuses_a_long_record_retry() -> None:
    with pytest.raises(ConfigurationError, match=r"\(318 s\)"):
        load_settings({"RECORD_RETRY_SECONDS": "300"})


@given(
    st.floats(min_value=0, max_value=100),
    st.floats(min_value=0.1, max_value=100),
    st.floats(min_value=0.1, max_value=100),
    st.floats(min_value=0, max_value=100),
    st.integers(min_value=1, max_value=1000),
)
def test_settings_are_accepted_exactly_when_stale_exceeds_the_hold(
    rate_wait: float, connect: float, read: float, record: float, stale: int
) -> None:
    env = {
        "RATE_WAIT_MAX_SECONDS": repr(rate_wait),
        "MESSAGEBIRD_CONNECT_TIMEOUT": repr(connect),
        "MESSAGEBIRD_READ_TIMEOUT": repr(read),
        "RECORD_RETRY_SECONDS": repr(record),
        "STALE_SENDING_SECONDS": str(stale),
    }
    if stale > rate_wait + connect + read + record:
        assert load_settings(env).stale_sending_seconds == stale
    else:
        with pytest.raises(ConfigurationError, match="STALE_SENDING_SECONDS"):
            load_settings(env)


@pytest.mark.parametrize("interval", ["0.5", "1", "30", "60"])
def test_a_recovery_interval_up_to_a_minute_is_accepted(interval: str) -> None:
    assert load_settings({"RECOVERY_INTERVAL_SECONDS": interval}).recovery_interval_seconds == float(interval)


@pytest.mark.parametrize("interval", ["0", "-1", "60.5", "3600"])
def test_a_recovery_interval_of_zero_or_over_a_minute_is_refused(interval: str) -> None:
    with pytest.raises(ConfigurationError, match="RECOVERY_INTERVAL_SECONDS must be between 0 and 60"):
        load_settings({"RECOVERY_INTERVAL_SECONDS": interval})


def test_a_recovery_interval_that_is_not_a_number_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="RECOVERY_INTERVAL_SECONDS"):
        load_settings({"RECOVERY_INTERVAL_SECONDS": "soon"})
