"""A tenant's cap on segments per SMS: the worst case a template can render to, checked when the
template is saved (tenant create, template, onboarding definitions) and again for every rendered SMS."""

from __future__ import annotations

from typing import Any

import pytest

from tenant_worker.domain.model import ValidationError
from tenant_worker.domain.sms_limits import (
    DEFAULT_MAX_SEGMENTS,
    check_template_fits,
    over_segment_limit,
    worst_case_sms,
)
from tenant_worker.domain.templates import TemplateError, render_template
from tenant_worker.services.definitions import parse_definition
from tenant_worker.services.tenants import DEFAULT_TEMPLATE
from tests.unit.test_validation import good_spec


@pytest.mark.parametrize(
    ("template", "org_name", "encoding", "length", "segments"),
    [
        pytest.param("{customer_name}", "Acme", "GSM-7", 100, 1, id="name-at-its-bound"),
        pytest.param("{plan}", "Acme", "GSM-7", 50, 1, id="plan-at-its-bound"),
        pytest.param("{amount}", "Acme", "GSM-7", 20, 1, id="widest-amount-XXX-9,999,999,999.99"),
        pytest.param("{amount_raw}", "Acme", "GSM-7", 13, 1, id="widest-raw-amount-9999999999.99"),
        pytest.param("{currency}", "Acme", "GSM-7", 3, 1, id="currency"),
        pytest.param("{expires_on}", "Acme", "GSM-7", 17, 1, id="long-date-30-September-2026"),
        pytest.param("{expires_on_iso}", "Acme", "GSM-7", 10, 1, id="iso-date"),
        pytest.param("{days_left}", "Acme", "GSM-7", 2, 1, id="days-left-up-to-60"),
        pytest.param("{org_name}", "Acme Fiber", "GSM-7", 10, 1, id="org-name-as-it-is"),
        pytest.param("{org_name}", "Acme €", "GSM-7", 7, 1, id="org-name-extension-character"),
        pytest.param("{customer_name} {customer_name}", "Acme", "GSM-7", 201, 2, id="placeholder-twice"),
        pytest.param("Привет {customer_name}", "Acme", "UCS-2", 107, 2, id="ucs2-literal-makes-every-value-ucs2"),
        pytest.param("{org_name}: {customer_name}", "Ωmega Ñet", "GSM-7", 111, 1, id="greek-and-ñ-are-gsm"),
        pytest.param("{org_name}: {customer_name}", "Łódź Net", "UCS-2", 110, 2, id="ucs2-org-name"),
        pytest.param(DEFAULT_TEMPLATE, "Acme Fiber", "GSM-7", 286, 2, id="default-template"),
        pytest.param("x" * 160, "Acme", "GSM-7", 160, 1, id="no-placeholder"),
    ],
)
def test_worst_case_rendering_fills_each_placeholder_to_its_widest(
    template: str, org_name: str, encoding: str, length: int, segments: int
) -> None:
    worst = worst_case_sms(template, org_name)

    assert (worst.encoding, worst.length, worst.segments) == (encoding, length, segments)


def test_worst_case_is_never_shorter_than_a_real_rendering_in_the_same_alphabet() -> None:
    real = {
        "customer_name": "Bartholomew Featherstonehaugh-Cholmondeley",
        "plan": "Fiber 1000 Unlimited Family",
        "amount": "1234567.89",
        "currency": "EUR",
        "expires_on": "2026-01-31",
        "days_left": "5",
        "org_name": "Acme Fiber",
    }

    assert render_template(DEFAULT_TEMPLATE, real).length < worst_case_sms(DEFAULT_TEMPLATE, "Acme Fiber").length


def test_a_template_that_fits_is_accepted_at_the_boundary() -> None:
    check_template_fits("{customer_name}" + "x" * 60, "Acme", 1)  # 160 septets: one segment
    check_template_fits(DEFAULT_TEMPLATE, "Acme Fiber", 2)


def test_a_template_whose_worst_case_exceeds_the_cap_is_refused_naming_the_worst_case() -> None:
    with pytest.raises(TemplateError) as excinfo:
        check_template_fits("{customer_name}" + "x" * 61, "Acme", 1, "templates[2]")

    [problem] = excinfo.value.problems
    assert problem.startswith("templates[2] can need 2 SMS segments (GSM-7, 161 septets in the worst case")
    assert "{customer_name} 100 characters" in problem and "{plan}" not in problem
    assert "the tenant allows 1 (max_segments)" in problem


def test_a_ucs2_template_is_measured_in_ucs2_characters() -> None:
    with pytest.raises(TemplateError, match=r"UCS-2, 2\d\d UCS-2 characters.*allows 3"):
        check_template_fits(
            "Здравствуйте, {customer_name}! Ваш тариф {plan} стоит {amount} {currency}. Оплатите до {expires_on}.",
            "Acme",
            DEFAULT_MAX_SEGMENTS,
        )


@pytest.mark.parametrize(
    ("body", "cap", "refused"),
    [
        pytest.param("x" * 160, 1, False, id="160-septets-in-1"),
        pytest.param("x" * 161, 1, True, id="161-septets-over-1"),
        pytest.param("x" * 459, 3, False, id="459-septets-in-3"),
        pytest.param("x" * 460, 3, True, id="460-septets-over-3"),
        pytest.param("ж" * 201, 3, False, id="201-ucs2-in-3"),
        pytest.param("ж" * 202, 3, True, id="202-ucs2-over-3"),
    ],
)
def test_a_rendered_sms_over_the_cap_is_reported_too_long(body: str, cap: int, refused: bool) -> None:
    rendered = render_template("{customer_name}", {"customer_name": body})

    reason = over_segment_limit(rendered, cap)

    assert (reason is not None) is refused
    if reason:
        assert f"the tenant allows {cap}" in reason


@pytest.mark.parametrize("cap", [0, 11, -1])
def test_max_segments_must_be_between_1_and_10(cap: int) -> None:
    with pytest.raises(ValidationError, match=f"max segments {cap} must be a whole number from 1 to 10"):
        good_spec(max_segments=cap).validated()


def definition(**extra: Any) -> dict[str, Any]:
    return {"slug": "acme", "name": "Acme Fiber", "timezone": "Europe/Paris", "originator": "Acme", **extra}


def test_definitions_default_to_three_segments_and_accept_max_segments() -> None:
    assert parse_definition(definition()).spec.max_segments == DEFAULT_MAX_SEGMENTS
    assert parse_definition(definition(max_segments=5)).spec.max_segments == 5


@pytest.mark.parametrize("value", ["3", 2.5, True])
def test_definition_max_segments_must_be_a_whole_number(value: object) -> None:
    with pytest.raises(ValidationError, match=r"max_segments: .* must be a whole number"):
        parse_definition(definition(max_segments=value))


def test_definition_templates_over_the_cap_are_refused_by_position_and_so_is_the_default() -> None:
    templates = [{"body": "Hi {customer_name}", "locale": "en"}, {"body": "{customer_name} " * 2, "window": 1}]

    with pytest.raises(ValidationError) as excinfo:
        parse_definition(definition(max_segments=1, templates=templates))

    problems = excinfo.value.problems
    assert [p.split(" can need")[0] for p in problems] == [
        "templates[2]",
        "the default template (added as no template covers every window and locale)",
    ]


def test_an_out_of_range_cap_is_one_problem_not_one_per_template() -> None:
    with pytest.raises(ValidationError) as excinfo:
        parse_definition(definition(max_segments=0))

    assert excinfo.value.problems == ["max segments 0 must be a whole number from 1 to 10"]
