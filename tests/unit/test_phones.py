"""The E.164 fast path of ``adapters.phones.normalize_phone`` agrees with phonenumbers itself.

The fast path may only ever answer "valid, unchanged" where ``phonenumbers.parse`` +
``is_valid_number`` + E.164 formatting would give exactly the input; everything else goes the full
way. Checked on every region's example numbers of every type and on hypothesis' mutations of them.
"""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenant_worker.adapters.phones import InvalidPhoneError, _valid_e164, normalize_phone


def _library(text: str) -> str | None:
    """What phonenumbers alone makes of ``text``: its E.164 form if valid, else None."""
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _examples() -> list[str]:
    found = set()
    for region in phonenumbers.SUPPORTED_REGIONS:
        for kind in range(12):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                found.add(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    for code in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS:
        number = phonenumbers.example_number_for_non_geo_entity(code)
        if number is not None:
            found.add(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    return sorted(found)


EXAMPLES = _examples()


def test_every_regions_example_numbers_agree_and_most_take_the_fast_path() -> None:
    fast = 0
    for text in EXAMPLES:
        if _valid_e164(text):
            fast += 1
            assert _library(text) == text, text
    assert len(EXAMPLES) > 900
    assert fast > 0.9 * len(EXAMPLES)  # the fast path is the common path, not a corner


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """An example number with digits changed, dropped or added: valid or not, often near the edge."""
    digits = list(draw(st.sampled_from(EXAMPLES))[1:])
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["change", "drop", "add"]))
        at = draw(st.integers(0, len(digits) - 1))
        if action == "change":
            digits[at] = draw(st.sampled_from("0123456789"))
        elif action == "drop" and len(digits) > 1:
            del digits[at]
        else:
            digits.insert(at, draw(st.sampled_from("0123456789")))
    return "+" + "".join(digits)


@settings(max_examples=3000, deadline=None)
@given(st.one_of(mutated(), st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True)))
def test_the_fast_path_only_accepts_what_phonenumbers_accepts_unchanged(text: str) -> None:
    if _valid_e164(text):
        assert _library(text) == text
    expected = _library(text)
    if expected is None:
        with pytest.raises(InvalidPhoneError):
            normalize_phone(text)
    else:
        assert normalize_phone(text) == expected
