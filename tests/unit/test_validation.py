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
    text = csv_text(
        GOOD_ROW,
        "c-2, Bob , +31 6 1234 5679 ,Fiber 500,0,usd,2026-12-31",
        header=HEADER,
    ) + csv_text(
        "c-3,Cy,+4915123456789,Fiber 100,10.5,EUR,2027-01-15,yes,suspended",
        header=HEADER + ",opted_out,status",
    ).split("\n", 1)[1].replace("c-3", "c-3")
    # Optional columns live in their own file; mixing headers above would be a different file.
    records = parse_customers_csv(csv_text(GOOD_ROW, "c-2, Bob , +31 6 1234 5679 ,Fiber 500,0,usd,2026-12-31"))
    del text

    assert [(r.external_ref, r.name, r.phone, r.amount, r.currency, r.expires_on) for r in records] == [
        ("c-1", "Ada Lovelace", "+31612345678", Decimal("29.95"), "EUR", dt.date(2026, 3, 1)),
        ("c-2", "Bob", "+31612345679", Decimal("0"), "USD", dt.date(2026, 12, 31)),
    ]
    assert all(not r.opted_out and r.status == "active" for r in records)
