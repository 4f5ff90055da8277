"""Tenant SMS templates: what is accepted on save, what a send renders, and what it costs."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenant_worker.domain import templates
from tenant_worker.domain.templates import (
    MAX_TEMPLATE_LENGTH,
    PLACEHOLDERS,
    RenderedSms,
    TemplateError,
    measure_sms,
    render_template,
    validate_template,
)

ALL_VALUES = {
    "customer_name": "Ada",
    "days_left": "3",
    "expires_on": "1 March 2025",
    "expires_on_iso": "2025-03-01",
    "amount": "€49.00",
    "amount_raw": "49.00",
    "currency": "EUR",
    "plan": "Gold",
    "org_name": "Acme",
}

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039eÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = "\f^{}\\[~]|€"


def test_placeholders_are_the_documented_fixed_set() -> None:
    assert set(PLACEHOLDERS) == set(ALL_VALUES)
    assert templates.__doc__ is not None
    for name, description in PLACEHOLDERS.items():
        assert description.strip()
        assert f"{{{name}}}" in templates.__doc__


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("Hi {customer_name}, {days_left} days left.", id="two-placeholders"),
        pytest.param(
            "{org_name}: {plan} for {customer_name} expires {expires_on}; pay {amount} {currency}.",
            id="every-placeholder",
        ),
        pytest.param("Your plan expires soon.", id="no-placeholders"),
        pytest.param("Use {{code}} and pay {amount}", id="doubled-braces"),
        pytest.param("{plan}{plan}", id="repeated-placeholder"),
        pytest.param("Zahlung fällig: {amount} € — danke, {customer_name} 🙏", id="unicode-text"),
        pytest.param("x" * MAX_TEMPLATE_LENGTH, id="exactly-the-length-limit"),
    ],
)
def test_valid_template_is_accepted_when_saved(text: str) -> None:
    validate_template(text)


@pytest.mark.parametrize(
    ("text", "offending"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param("  \n\t ", "empty", id="blank"),
        pytest.param("Hi {foo}", "{foo}", id="unknown-placeholder"),
        pytest.param("Hi {Customer_Name}", "{Customer_Name}", id="placeholder-names-are-case-sensitive"),
        pytest.param("{customer_name.__class__}", "{customer_name.__class__}", id="attribute-access"),
        pytest.param("{x[0]}", "{x[0]}", id="index-access-on-unknown"),
        pytest.param("{customer_name[0]}", "{customer_name[0]}", id="index-access"),
        pytest.param("Hi {}", "{}", id="empty-positional"),
        pytest.param("Hi {0}", "{0}", id="numbered-positional"),
        pytest.param("{plan!r}", "{plan!r}", id="conversion"),
        pytest.param("{amount:>10}", "{amount:>10}", id="format-spec"),
        pytest.param("{amount:{plan}}", "{amount:{plan}}", id="nested-field-in-format-spec"),
        pytest.param("Pay {", '"{"', id="single-opening-brace"),
        pytest.param("Pay } now", '"}"', id="single-closing-brace"),
        pytest.param("Pay {amount now", '"{amount now"', id="unclosed-field"),
        pytest.param("{plan!x!}", '"{plan!x!}"', id="malformed-conversion"),
        pytest.param("x" * (MAX_TEMPLATE_LENGTH + 1), "1,001 characters", id="too-long"),
    ],
)
def test_invalid_template_is_rejected_when_saved_naming_the_offending_piece(text: str, offending: str) -> None:
    with pytest.raises(TemplateError) as caught:
        validate_template(text)
    assert len(caught.value.problems) == 1
    assert offending in caught.value.problems[0]


def test_template_with_unknown_placeholder_is_rejected_when_saved() -> None:
    with pytest.raises(TemplateError) as caught:
        validate_template("Dear {name}")
    assert caught.value.problems == [
        "unknown placeholder {name}; allowed: amount, amount_raw, currency, customer_name, days_left, expires_on, "
        "expires_on_iso, org_name, plan"
    ]


def test_template_with_three_problems_reports_all_three_at_once() -> None:
    with pytest.raises(TemplateError) as caught:
        validate_template("Hi {foo}, {plan!r} costs {amount:>10}")
    problems = caught.value.problems
    assert len(problems) == 3
    assert "{foo}" in problems[0]
    assert "{plan!r}" in problems[1]
    assert "{amount:>10}" in problems[2]


def test_problems_after_a_stray_closing_brace_are_still_reported() -> None:
    with pytest.raises(TemplateError) as caught:
        validate_template("Hi } {foo}")
    assert len(caught.value.problems) == 2
    assert "character 4" in caught.value.problems[0]
    assert "{foo}" in caught.value.problems[1]


def test_repeated_mistake_is_reported_once() -> None:
    with pytest.raises(TemplateError) as caught:
        validate_template("{foo} and {foo}")
    assert len(caught.value.problems) == 1


def test_template_error_message_joins_every_problem() -> None:
    with pytest.raises(TemplateError) as caught:
        validate_template("{foo} {bar}")
    err = caught.value
    assert isinstance(err, ValueError)
    assert all(problem in str(err) for problem in err.problems)


def test_rendering_substitutes_values_and_turns_doubled_braces_into_literal_braces() -> None:
    sms = render_template("Hi {customer_name}, {plan} ends in {days_left} days {{ok}}", ALL_VALUES)
    # 32 characters, and each brace is an escape sequence costing two septets.
    expected = RenderedSms(body="Hi Ada, Gold ends in 3 days {ok}", encoding="GSM-7", segments=1, length=34)
    assert sms == expected


def test_value_containing_braces_is_sent_verbatim_not_reinterpreted() -> None:
    sms = render_template("Hi {customer_name}", {**ALL_VALUES, "customer_name": "{plan.__class__}"})
    assert sms.body == "Hi {plan.__class__}"


def test_rendering_without_a_value_for_a_used_placeholder_fails_naming_it() -> None:
    with pytest.raises(TemplateError) as caught:
        render_template("Pay {amount} {currency}", {"amount": "10"})
    assert caught.value.problems == ["no value for placeholder {currency}"]


def test_rendering_ignores_values_for_placeholders_the_template_does_not_use() -> None:
    assert render_template("Pay now", ALL_VALUES).body == "Pay now"


def test_rendering_an_invalid_template_raises_template_error() -> None:
    with pytest.raises(TemplateError, match="__class__"):
        render_template("{customer_name.__class__}", ALL_VALUES)


def test_rendered_sms_switches_to_ucs2_when_a_value_needs_it() -> None:
    sms = render_template("Hi {customer_name}", {**ALL_VALUES, "customer_name": "Жанна"})
    assert (sms.encoding, sms.length, sms.segments) == ("UCS-2", 8, 1)


@pytest.mark.parametrize(
    ("body", "encoding", "length", "segments"),
    [
        pytest.param("", "GSM-7", 0, 1, id="empty"),
        pytest.param("a" * 160, "GSM-7", 160, 1, id="160-septets-fit-one-sms"),
        pytest.param("a" * 161, "GSM-7", 161, 2, id="161-septets-need-two"),
        pytest.param("a" * 306, "GSM-7", 306, 2, id="306-septets-fill-two-parts"),
        pytest.param("a" * 307, "GSM-7", 307, 3, id="307-septets-need-three"),
        pytest.param("é", "GSM-7", 1, 1, id="e-acute-is-gsm"),
        pytest.param("Ç", "GSM-7", 1, 1, id="capital-c-cedilla-is-gsm"),
        pytest.param("€", "GSM-7", 2, 1, id="euro-costs-two-septets"),
        pytest.param("[x]", "GSM-7", 5, 1, id="brackets-cost-two-septets"),
        pytest.param("ç", "UCS-2", 1, 1, id="lowercase-c-cedilla-is-not-gsm"),
        pytest.param("ж" * 70, "UCS-2", 70, 1, id="70-units-fit-one-sms"),
        pytest.param("ж" * 71, "UCS-2", 71, 2, id="71-units-need-two"),
        pytest.param("ж" * 134, "UCS-2", 134, 2, id="134-units-fill-two-parts"),
        pytest.param("ж" * 135, "UCS-2", 135, 3, id="135-units-need-three"),
        pytest.param("😀", "UCS-2", 2, 1, id="emoji-is-a-surrogate-pair"),
        pytest.param("a" * 152 + "€", "GSM-7", 154, 1, id="escape-near-boundary-in-single-sms"),
        pytest.param("a" * 152 + "€" + "a" * 7, "GSM-7", 161, 2, id="escape-moves-to-second-part"),
        pytest.param("a" * 152 + "€" + "a" * 152, "GSM-7", 306, 3, id="escape-not-split-costs-a-part"),
        pytest.param("a" * 151 + "€" + "a" * 153, "GSM-7", 306, 2, id="escape-ending-a-part-fits"),
        pytest.param("ж" * 66 + "😀" + "ж" * 66, "UCS-2", 134, 3, id="surrogate-pair-not-split"),
    ],
)
def test_sms_is_measured_like_the_gateway_bills_it(body: str, encoding: str, length: int, segments: int) -> None:
    measure = measure_sms(body)
    assert (measure.encoding, measure.length, measure.segments) == (encoding, length, segments)


@pytest.mark.parametrize("char", list(GSM_BASIC))
def test_every_gsm_basic_character_costs_one_septet(char: str) -> None:
    assert measure_sms(char).length == 1
    assert measure_sms(char).encoding == "GSM-7"


@pytest.mark.parametrize("char", list(GSM_EXTENSION))
def test_every_gsm_extension_character_costs_two_septets(char: str) -> None:
    assert measure_sms(char).length == 2
    assert measure_sms(char).encoding == "GSM-7"


# -- properties ------------------------------------------------------------------------------------

_literal = st.text(max_size=40)
_placeholder = st.sampled_from(sorted(PLACEHOLDERS))
_template_parts = st.lists(st.one_of(_literal, _placeholder.map(lambda name: ("field", name))), max_size=12)
_values = st.fixed_dictionaries({name: st.text(max_size=30) for name in PLACEHOLDERS})
_gsm_heavy_text = st.text(
    alphabet=st.one_of(st.sampled_from(GSM_BASIC + GSM_EXTENSION), st.characters(codec="utf-8")),
    max_size=400,
)
_gsm_text = st.text(alphabet=st.sampled_from(GSM_BASIC + GSM_EXTENSION), max_size=700)
_template_like_text = st.one_of(
    st.text(),
    st.lists(st.sampled_from([*"{}[]!:.0rs _a", *PLACEHOLDERS, "{{", "}}", "{plan}"]), max_size=30).map("".join),
)


@given(parts=_template_parts, values=_values)
def test_any_valid_template_renders_with_any_values_and_contains_every_value(
    parts: list[str | tuple[str, str]], values: dict[str, str]
) -> None:
    template = "".join(
        part.replace("{", "{{").replace("}", "}}") if isinstance(part, str) else f"{{{part[1]}}}" for part in parts
    )
    expected = "".join(part if isinstance(part, str) else values[part[1]] for part in parts)
    if not template.strip() or len(template) > MAX_TEMPLATE_LENGTH:
        return

    sms = render_template(template, values)

    assert sms.body == expected
    for part in parts:
        if not isinstance(part, str):
            assert values[part[1]] in sms.body


@given(body=_gsm_heavy_text, extra=st.characters(codec="utf-8"))
def test_appending_a_character_never_reduces_the_segment_count(body: str, extra: str) -> None:
    assert measure_sms(body + extra).segments >= measure_sms(body).segments


@given(body=_gsm_text)
def test_multipart_gsm_body_needs_at_least_one_segment_per_153_septets(body: str) -> None:
    measure = measure_sms(body)
    assert measure.encoding == "GSM-7"
    if measure.length <= 160:
        assert measure.segments == 1
    else:
        # An escape never straddles parts, so at most one septet per part is wasted.
        assert math.ceil(measure.length / 153) <= measure.segments <= math.ceil(measure.length / 152)


@given(text=_template_like_text)
def test_validation_of_arbitrary_text_raises_nothing_but_template_error(text: str) -> None:
    try:
        validate_template(text)
    except TemplateError as err:
        assert err.problems
