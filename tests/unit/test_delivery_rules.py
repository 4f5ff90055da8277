"""The pure rules of delivery receipts and replies (``domain.delivery``)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenant_worker.domain.delivery import (
    DELIVERY_RANK,
    DeliveryReport,
    alert_reason,
    is_stop_reply,
    most_advanced,
    parse_inbound,
    parse_report,
    phone_of,
    supersedes,
)
from tenant_worker.domain.model import ValidationError

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def report(status: str, seconds: int = 0, rid: int = 1) -> DeliveryReport:
    return DeliveryReport(f"mb-{rid}", rid, status, T0 + dt.timedelta(seconds=seconds))


@pytest.mark.parametrize(
    ("new", "old", "old_at", "wins"),
    [
        pytest.param(report("buffered"), None, None, True, id="first-report"),
        pytest.param(report("delivered", 1), "buffered", T0, True, id="final-after-buffered"),
        pytest.param(report("buffered", 9), "delivered", T0, False, id="late-buffered"),
        pytest.param(report("delivered", 0), "delivered", T0, False, id="duplicate"),
        pytest.param(report("delivery_failed", 5), "delivered", T0, True, id="later-final"),
        pytest.param(report("delivered", 0), "delivery_failed", T0 + dt.timedelta(seconds=5), False, id="older-final"),
        pytest.param(report("sent", 9), "buffered", T0, False, id="sent-after-buffered"),
    ],
)
def test_a_report_supersedes_by_rank_then_time(new, old, old_at, wins) -> None:
    assert supersedes(new, old, old_at) is wins


statuses = st.sampled_from(sorted(DELIVERY_RANK))
reports = st.builds(report, statuses, st.integers(0, 20))


@given(st.lists(reports, min_size=1, max_size=8), st.randoms())
def test_the_kept_report_does_not_depend_on_arrival_order(batch, rnd) -> None:
    shuffled = list(batch)
    rnd.shuffle(shuffled)
    kept = most_advanced(batch)[0]
    other = most_advanced(shuffled)[0]
    assert (kept.rank, kept.status_at) == (other.rank, other.status_at)
    assert all(not supersedes(r, kept.status, kept.status_at) for r in batch)


def test_a_report_is_parsed_from_messagebirds_fields() -> None:
    fields = {"id": "abc", "reference": "42", "recipient": "31612345678", "status": "delivery_failed",
              "statusDatetime": "2026-03-02T10:00:00+01:00", "statusReason": "unknown subscriber",
              "statusErrorCode": "1"}  # fmt: skip
    assert parse_report(fields) == DeliveryReport("abc", 42, "delivery_failed", T0, "unknown subscriber", 1)


@pytest.mark.parametrize("reference", ["", "abc", "-1", "1" * 19])
def test_a_report_for_a_message_that_is_not_a_reminder_is_nothing_to_record(reference: str) -> None:
    fields = {"id": "abc", "reference": reference, "status": "delivered", "statusDatetime": T0.isoformat()}
    assert parse_report(fields) is None


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"status": "teleported"}, "status"),
        ({"statusDatetime": "yesterday"}, "statusDatetime"),
        ({"statusDatetime": "2026-03-02T09:00:00"}, "statusDatetime"),  # no offset: ambiguous
        ({"id": ""}, "id"),
        ({"statusErrorCode": "x"}, "statusErrorCode"),
    ],
)
def test_a_malformed_report_names_the_field(change: dict[str, str], problem: str) -> None:
    fields = {"id": "abc", "reference": "1", "status": "delivered", "statusDatetime": T0.isoformat(), **change}
    with pytest.raises(ValidationError, match=problem):
        parse_report(fields)


@pytest.mark.parametrize(
    ("error_code", "reason", "code"),
    [
        (1, "unknown subscriber", "error_1"),
        (None, "Unknown Subscriber!", "unknown_subscriber"),
        (None, None, "no_reason"),
    ],
)
def test_alerts_are_grouped_by_a_short_stable_reason(error_code, reason, code) -> None:
    assert alert_reason(DeliveryReport("m", 1, "delivery_failed", T0, reason, error_code)) == code


@pytest.mark.parametrize("text", ["STOP", "stop", "  Stop!\n", "Stopp", "ARRÊT", "arret.", "uitschrijven"])
def test_stop_keywords_match_without_case_accents_or_trailing_punctuation(text: str) -> None:
    assert is_stop_reply(text, ["STOP", "STOPP", "ARRET", "UITSCHRIJVEN"])


@pytest.mark.parametrize("text", ["", "please stop", "STOP IT", "stopping", "?"])
def test_only_a_keyword_on_its_own_opts_out(text: str) -> None:
    assert not is_stop_reply(text, ["STOP"])


def test_phones_are_normalised_to_e164() -> None:
    assert phone_of("31612345678") == "+31612345678"
    assert phone_of("+31 6 1234 5678") == "+31612345678"
    assert phone_of("123") is None


def test_an_inbound_sms_takes_its_text_from_body_or_payload() -> None:
    assert parse_inbound({"originator": "316", "recipient": "3197", "payload": "STOP"}).body == "STOP"
    with pytest.raises(ValidationError, match="originator"):
        parse_inbound({"recipient": "3197", "body": "STOP"})
