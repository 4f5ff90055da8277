"""What operators may type: tenant specs, customer CSV files and their phone numbers; plus the retry delays
after gateway hiccups and the scrubbing of phone numbers from Sentry events.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenant_worker.adapters.phones import normalize_phone
from tenant_worker.adapters.sentry import scrub_event
from tenant_worker.domain.backoff import retry_delay
from tenant_worker.domain.model import TenantSpec, ValidationError, is_valid_originator, is_valid_timezone
from tenant_worker.services.customers import parse_customers_csv

HEADER = "external_ref,name,phone,plan,amount,currency,expires_on"
GOOD_ROW = "c-1,Ada Lovelace,+31612345678,Fiber 100,29.95,EUR,2026-03-01"


def good_spec(**changes: Any) -> TenantSpec:
    """A valid tenant spec with some fields replaced."""
    fields: dict[str, Any] = {
        "slug": "acme-fiber",
        "name": "Acme Fiber",
        "timezone": "Europe/Amsterdam",
        "originator": "AcmeFiber",
        "locale": "nl-NL",
        "windows": (5, 3, 1),
    }
    fields.update(changes)
    return TenantSpec(**fields)


def csv_text(*rows: str, header: str = HEADER) -> str:
    """A CSV file with the given data rows."""
    return "\n".join([header, *rows]) + "\n"


def problems_of(text: str, default_region: str | None = None) -> list[str]:
    """Every problem parse_customers_csv reports for ``text`` (it must report at least one)."""
    with pytest.raises(ValidationError) as excinfo:
        parse_customers_csv(text, default_region)
    return excinfo.value.problems


# Tenant specs ----------------------------------------------------------------------------------------


def test_valid_tenant_spec_is_normalised() -> None:
    spec = good_spec(name="  Acme Fiber ", windows=(1, 5, 3, 3)).validated()

    assert spec.windows == (5, 3, 1)
    assert spec.name == "Acme Fiber"
    assert (spec.slug, spec.timezone, spec.originator, spec.locale) == (
        "acme-fiber",
        "Europe/Amsterdam",
        "AcmeFiber",
        "nl-NL",
    )


def test_invalid_tenant_spec_reports_every_problem_at_once() -> None:
    spec = good_spec(slug="Acme Fiber!", timezone="Mars/Olympus", originator="Acme Fiber BV", locale="english")

    with pytest.raises(ValidationError) as excinfo:
        spec.validated()

    problems = excinfo.value.problems
    assert len(problems) == 4, problems
    assert any("slug 'Acme Fiber!'" in p for p in problems)
    assert any("time zone 'Mars/Olympus'" in p for p in problems)
    assert any("originator 'Acme Fiber BV'" in p for p in problems)
    assert any("locale 'english'" in p for p in problems)


def test_invalid_windows_and_empty_name_are_reported_alongside_other_problems() -> None:
    with pytest.raises(ValidationError) as excinfo:
        good_spec(slug="x", name="  ", windows=(0, 3)).validated()

    problems = excinfo.value.problems
    assert len(problems) == 3, problems
    assert any("name must not be empty" in p for p in problems)
    assert any("between 1 and 60" in p for p in problems)


@pytest.mark.parametrize(
    ("originator", "valid"),
    [
        pytest.param("AcmeFiber", True, id="alphanumeric"),
        pytest.param("A1b2C3d4E5f", True, id="11-alphanumerics"),
        pytest.param("A1b2C3d4E5f6", False, id="12-alphanumerics"),
        pytest.param("+31612345678", True, id="e164-number"),
        pytest.param("31612345678", True, id="number-without-plus"),
        pytest.param("+123", False, id="too-short-number"),
        pytest.param("+0612345678", False, id="number-starting-with-zero"),
        pytest.param("+3161234567890123", False, id="longer-than-e164"),
        pytest.param("Acme Fiber", False, id="space"),
        pytest.param("Acme-Fiber", False, id="hyphen"),
        pytest.param("Café", False, id="non-ascii-letter"),
        pytest.param("", False, id="empty"),
    ],
)
def test_originator_must_be_up_to_11_alphanumerics_or_a_phone_number(originator: str, valid: bool) -> None:
    assert is_valid_originator(originator) is valid
    if valid:
        assert good_spec(originator=originator).validated().originator == originator
    else:
        with pytest.raises(ValidationError, match="originator"):
            good_spec(originator=originator).validated()


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        pytest.param("Europe/Amsterdam", True, id="iana-zone"),
        pytest.param("America/Argentina/Buenos_Aires", True, id="three-level-zone"),
        pytest.param("UTC", True, id="utc"),
        pytest.param("Mars/Olympus", False, id="unknown-zone"),
        pytest.param("Europe", False, id="region-directory"),
        pytest.param("", False, id="empty"),
        pytest.param("/etc/localtime", False, id="absolute-path"),
        pytest.param("../zoneinfo/UTC", False, id="relative-path"),
        pytest.param("Europe/Amsterdam ", False, id="trailing-space"),
    ],
)
def test_time_zone_must_be_an_iana_name(name: str, valid: bool) -> None:
    assert is_valid_timezone(name) is valid


# Customer CSV ----------------------------------------------------------------------------------------


def test_valid_customer_file_is_parsed_into_records() -> None:
    records = parse_customers_csv(csv_text(GOOD_ROW, "c-2, Bob , +31 6 1234 5679 ,Fiber 500,0,usd,2026-12-31"))

    assert [(r.external_ref, r.name, r.phone, r.plan, r.amount, r.currency, r.expires_on) for r in records] == [
        ("c-1", "Ada Lovelace", "+31612345678", "Fiber 100", Decimal("29.95"), "EUR", dt.date(2026, 3, 1)),
        ("c-2", "Bob", "+31612345679", "Fiber 500", Decimal("0"), "USD", dt.date(2026, 12, 31)),
    ]
    assert all(not r.opted_out and r.status == "active" for r in records)


def test_optional_opted_out_and_status_columns_are_read() -> None:
    text = csv_text(
        GOOD_ROW + ",yes,suspended",
        "c-2,Bob,+31612345679,Fiber 100,1.00,EUR,2026-03-01,false,",
        header=HEADER + ",opted_out,status",
    )

    records = parse_customers_csv(text)

    assert [(r.opted_out, r.status) for r in records] == [(True, "suspended"), (False, "active")]


def test_numbers_without_a_country_code_are_accepted_with_a_default_region() -> None:
    text = csv_text("c-1,Ada,06 12345678,Fiber 100,29.95,EUR,2026-03-01")

    assert [r.phone for r in parse_customers_csv(text, default_region="NL")] == ["+31612345678"]
    assert problems_of(text) == ["line 2: phone number needs a +country code (or pass a default region)"]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        pytest.param("c-1,Ada,+31612345678,Fiber 100,29.95", "expected 7 fields, found 5", id="too-few-fields"),
        pytest.param(GOOD_ROW + ",extra", "expected 7 fields, found 8", id="too-many-fields"),
        pytest.param(
            "c-1,Ada,+3161234,Fiber 100,29.95,EUR,2026-03-01", "not a valid number for its country", id="short-phone"
        ),
        pytest.param("c-1,Ada,call me,Fiber 100,29.95,EUR,2026-03-01", "phone number", id="text-phone"),
        pytest.param("c-1,Ada,,Fiber 100,29.95,EUR,2026-03-01", "phone number is empty", id="empty-phone"),
        pytest.param(
            "c-1,Ada,+999612345678,Fiber 100,29.95,EUR,2026-03-01", "unknown country code", id="unknown-country"
        ),
        pytest.param("c-1,Ada,+31612345678,Fiber 100,1.234,EUR,2026-03-01", "amount '1.234'", id="three-decimals"),
        pytest.param("c-1,Ada,+31612345678,Fiber 100,-1,EUR,2026-03-01", "amount '-1'", id="negative-amount"),
        pytest.param("c-1,Ada,+31612345678,Fiber 100,abc,EUR,2026-03-01", "amount 'abc'", id="text-amount"),
        pytest.param("c-1,Ada,+31612345678,Fiber 100,NaN,EUR,2026-03-01", "amount 'NaN'", id="nan-amount"),
        pytest.param("c-1,Ada,+31612345678,Fiber 100,29.95,EURO,2026-03-01", "currency 'EURO'", id="4-letter-currency"),
        pytest.param("c-1,Ada,+31612345678,Fiber 100,29.95,€,2026-03-01", "currency '€'", id="symbol-currency"),
        pytest.param(
            "c-1,Ada,+31612345678,Fiber 100,29.95,EUR,2026-02-30", "expires_on '2026-02-30'", id="no-such-day"
        ),
        pytest.param("c-1,Ada,+31612345678,Fiber 100,29.95,EUR,01/03/2026", "expires_on '01/03/2026'", id="local-date"),
        pytest.param(",Ada,+31612345678,Fiber 100,29.95,EUR,2026-03-01", "external_ref", id="empty-ref"),
        pytest.param("c-1,,+31612345678,Fiber 100,29.95,EUR,2026-03-01", "name is empty", id="empty-name"),
        pytest.param("c-1,Ada,+31612345678,,29.95,EUR,2026-03-01", "plan is empty", id="empty-plan"),
    ],
)
def test_bad_row_is_reported_with_its_line_number_and_reason(row: str, reason: str) -> None:
    problems = problems_of(csv_text(GOOD_ROW.replace("c-1", "c-0"), row))

    assert len(problems) == 1, problems
    assert problems[0].startswith("line 3: ")
    assert reason in problems[0]


def test_every_reason_of_one_bad_row_is_reported() -> None:
    problems = problems_of(csv_text("c-1,Ada,12,Fiber 100,abc,EURO,tomorrow"))

    assert len(problems) == 1
    for reason in ("phone number", "amount 'abc'", "currency 'EURO'", "expires_on 'tomorrow'"):
        assert reason in problems[0]


def test_duplicate_external_ref_names_the_first_line() -> None:
    problems = problems_of(csv_text(GOOD_ROW, "c-2,Bob,+31612345679,Fiber 100,1,EUR,2026-03-01", GOOD_ROW))

    assert problems == ["line 4: external_ref 'c-1' repeats line 2"]


@pytest.mark.parametrize("column", ["phone", "expires_on"])
def test_missing_column_is_reported_on_the_header_line(column: str) -> None:
    header = ",".join(c for c in HEADER.split(",") if c != column)

    assert problems_of(csv_text(header=header)) == [f"line 1: missing column {column!r}"]


def test_unknown_column_is_reported_on_the_header_line() -> None:
    assert problems_of(csv_text(GOOD_ROW + ",red", header=HEADER + ",colour")) == ["line 1: unknown column 'colour'"]


def test_empty_file_reports_every_missing_column() -> None:
    assert len(problems_of("")) == len(HEADER.split(","))


def test_all_problems_of_a_file_are_reported_at_once_by_line() -> None:
    text = csv_text(
        GOOD_ROW,  # line 2
        "c-2,Bob,+31612345679,Fiber 100,29.95",  # line 3: malformed
        "c-3,Cy,12345,Fiber 100,29.95,EUR,2026-03-01",  # line 4: phone
        "c-4,Di,+31612345670,Fiber 100,1.234,EUR,2026-03-01",  # line 5: amount
        "",  # line 6: blank lines are skipped but still counted
        'c-5,"Ed\nMulti-line",+31612345671,Fiber 100,1,EUR,2026-03-01',  # lines 7-8: fine
        "c-6,Fa,+31612345672,Fiber 100,1,EURO,2026-03-01",  # line 9: currency
        "c-7,Gi,+31612345673,Fiber 100,1,EUR,2026-13-01",  # line 10: date
        "c-1,Ha,+31612345674,Fiber 100,1,EUR,2026-03-01",  # line 11: duplicate
    )

    problems = problems_of(text)

    assert [p.split(":", 1)[0] for p in problems] == [f"line {n}" for n in (3, 4, 5, 9, 10, 11)]
    for problem, reason in zip(
        problems,
        ["expected 7 fields", "phone number", "amount", "currency", "expires_on", "repeats line 2"],
        strict=True,
    ):
        assert reason in problem


def test_phone_numbers_are_normalised_to_e164() -> None:
    assert normalize_phone("+31 6-1234 5678") == "+31612345678"
    assert normalize_phone("06 12345678", "nl") == "+31612345678"


# Retry delays ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "step"),
    [
        pytest.param(0, 5.0, id="before-first-retry"),
        pytest.param(1, 5.0, id="first-retry"),
        pytest.param(2, 10.0, id="doubles"),
        pytest.param(4, 40.0, id="keeps-doubling"),
        pytest.param(7, 300.0, id="capped"),
        pytest.param(60, 300.0, id="stays-capped"),
    ],
)
def test_retry_delay_is_between_half_and_all_of_the_exponential_step(attempt: int, step: float) -> None:
    delays = [retry_delay(attempt, base=5.0, cap=300.0, rng=random.Random(seed)) for seed in range(200)]

    assert all(step / 2 <= d <= step for d in delays)
    assert max(delays) - min(delays) > step / 4, "no jitter: retries after a 429 would come back together"


@settings(max_examples=200, deadline=None)
@given(
    attempt=st.integers(min_value=0, max_value=1000),
    base=st.floats(min_value=0.001, max_value=600),
    cap=st.floats(min_value=0.001, max_value=3600),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_retry_delay_never_exceeds_the_cap_and_never_drops_below_half_the_step(
    attempt: int, base: float, cap: float, seed: int
) -> None:
    step = min(cap, base * 2.0 ** max(0, attempt - 1))

    delay = retry_delay(attempt, base, cap, random.Random(seed))

    assert step / 2 <= delay <= step <= cap


def test_retry_delay_is_capped_for_any_attempt_number() -> None:
    assert 150.0 <= retry_delay(1100, base=5.0, cap=300.0, rng=random.Random(0)) <= 300.0


# Sentry scrubbing ------------------------------------------------------------------------------------


def test_scrub_event_replaces_phone_numbers_in_nested_dicts_and_lists() -> None:
    event = {
        "message": "Reminder 42 failed: recipient +31612345678 rejected",
        "extra": {
            "recipients": ["+31612345678", "+4915123456789"],
            "batch": [{"to": "+31 6 1234 5678", "reminder_id": 42}],
        },
        "breadcrumbs": {"values": [{"message": "POST /messages for 31612345678"}]},
    }

    scrubbed = scrub_event(event, None)

    assert scrubbed == {
        "message": "Reminder 42 failed: recipient [phone] rejected",
        "extra": {"recipients": ["[phone]", "[phone]"], "batch": [{"to": "[phone]", "reminder_id": 42}]},
        "breadcrumbs": {"values": [{"message": "POST /messages for [phone]"}]},
    }


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("2026-03-01T09:30:00+01:00", id="iso-timestamp"),
        pytest.param("2026-03-01T09:30:00.123456Z", id="iso-timestamp-microseconds"),
        pytest.param("2026-03-01", id="iso-date"),
        pytest.param("reminder 1234567 failed", id="seven-digit-id"),
        pytest.param("tenant acme-fiber shard 12", id="small-ids"),
        pytest.param("f47ac10b-58cc-4372-a567-0e02b2c3d479", id="uuid"),
        pytest.param("took 12345.678 ms", id="decimal-number"),
    ],
)
def test_scrub_event_keeps_timestamps_and_ids(text: str) -> None:
    event = {"message": text, "contexts": {"reminder": {"id": 42, "error": text, "tags": [text]}}}

    assert scrub_event(event, None) == event


def test_scrub_event_removes_phone_numbers_used_as_dict_keys() -> None:
    scrubbed = scrub_event({"extra": {"errors": {"+31612345678": "rejected"}}}, None)

    assert "+31612345678" not in repr(scrubbed)
