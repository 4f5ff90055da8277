"""Phone numbers, validated and normalised to E.164 with Google's ``phonenumbers`` library.

Billing exports mostly hold numbers already in E.164 (``+31612345678``). For those,
:func:`normalize_phone` answers from phonenumbers' own metadata without ``phonenumbers.parse``: it
finds the country code and tests the national number against the same patterns, compiled once per
country code. That is what ``parse`` + ``is_valid_number`` do for such input, at about a tenth of the
cost (parsing was most of an import's time: ``scripts/bench_import.py``). It only ever answers
"valid, unchanged"; anything else (another form, a national prefix that ``parse`` would strip, a
non-geographic code, an invalid number) goes the full way, so messages and results stay the library's.
``tests/unit/test_phones.py`` checks the two agree on generated numbers of every region.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata

_E164 = re.compile(r"\+[1-9]\d{6,14}")
# The number types ``_number_type_helper`` tries; a number is valid when it matches the general
# description and any of these.
_TYPES = (
    "mobile",
    "fixed_line",
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
)


class InvalidPhoneError(ValueError):
    """The text is not a valid, dialable mobile or fixed number."""


def normalize_phone(raw: str, default_region: str | None = None) -> str:
    """Return ``raw`` as E.164 (``+31612345678``) or raise :class:`InvalidPhoneError` saying why.

    Numbers without a leading ``+`` need ``default_region`` (an ISO country code such as ``NL``).
    """
    text = raw.strip()
    if _valid_e164(text):
        return text
    if not text:
        raise InvalidPhoneError("phone number is empty")
    try:
        number = phonenumbers.parse(text, default_region.upper() if default_region else None)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            if text.startswith("+"):
                raise InvalidPhoneError("phone number has an unknown country code") from None
            raise InvalidPhoneError("phone number needs a +country code (or pass a default region)") from None
        raise InvalidPhoneError(f"phone number cannot be parsed ({exc._msg})") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneError("phone number is not a valid number for its country")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


# Checked for every SMS just before sending; parsing with phonenumbers costs more CPU than the rest of
# a send's bookkeeping, and the answer for a given string never changes.
@functools.lru_cache(maxsize=65536)
def is_valid_e164(phone: str) -> bool:
    """True when ``phone`` is a valid number already in E.164 form (checked again just before sending)."""
    try:
        return normalize_phone(phone) == phone
    except InvalidPhoneError:
        return False


@dataclass(frozen=True)
class _Desc:
    """A number description: the possible lengths (empty: any) and the national number pattern."""

    lengths: frozenset[int]
    pattern: re.Pattern[str]

    def matches(self, national: str) -> bool:
        return (not self.lengths or len(national) in self.lengths) and self.pattern.fullmatch(national) is not None


@dataclass(frozen=True)
class _Region:
    """What validating a national number against one region's metadata needs: the general
    description, and per number length one pattern joining every number type possible at that
    length (a type without lengths is possible at any)."""

    leading_digits: re.Pattern[str] | None
    general: _Desc
    types_by_length: dict[int, re.Pattern[str]]

    def valid(self, national: str) -> bool:
        types = self.types_by_length.get(len(national))
        return types is not None and self.general.matches(national) and types.fullmatch(national) is not None


def _by_length(general: _Desc, types: list[_Desc]) -> dict[int, re.Pattern[str]]:
    lengths = set(general.lengths) or set(range(1, 18))
    for desc in types:
        lengths |= desc.lengths
    joined = {}
    for length in lengths:
        fitting = [desc.pattern.pattern for desc in types if not desc.lengths or length in desc.lengths]
        if fitting:
            joined[length] = re.compile("|".join(f"(?:{pattern})" for pattern in fitting))
    return joined


@dataclass(frozen=True)
class _Country:
    """A country calling code: its regions in phonenumbers' order, and the national prefix ``parse``
    would strip (from the code's main region)."""

    regions: tuple[_Region, ...]
    national_prefix: re.Pattern[str] | None


def _valid_e164(text: str) -> bool:
    """True only when ``phonenumbers.parse(text)`` would keep the digits as they are and
    ``is_valid_number`` would accept them (see the module docs); False means "ask phonenumbers"."""
    if not _E164.fullmatch(text):
        return False
    for size in (1, 2, 3):
        country = _country(int(text[1 : 1 + size]))
        if country is not None:
            break
    else:
        return False
    national = text[1 + size :]
    if not country.regions or national.startswith("0"):
        return False
    if country.national_prefix is not None and country.national_prefix.match(national):
        return False
    if len(country.regions) == 1:
        return country.regions[0].valid(national)
    # is_valid_number: the number's region is the first whose leading digits match it, or else the
    # first it is valid in.
    for region in country.regions:
        if region.leading_digits is not None:
            if region.leading_digits.match(national):
                return region.valid(national)
        elif region.valid(national):
            return True
    return False


@functools.cache
def _country(code: int) -> _Country | None:
    """The compiled rules of a country calling code; None if unknown. A non-geographic code (region
    "001") gets no regions, so its numbers go the full way."""
    names = COUNTRY_CODE_TO_REGION_CODE.get(code)
    if names is None:
        return None
    if "001" in names:
        return _Country((), None)
    regions = []
    for name in names:
        metadata = PhoneMetadata.metadata_for_region(name, None)
        if metadata is None or metadata.general_desc is None:
            return _Country((), None)
        general = _desc(metadata.general_desc)
        if general is None:
            return _Country((), None)
        types = [d for d in (_desc(getattr(metadata, name)) for name in _TYPES) if d is not None]
        leading = re.compile(metadata.leading_digits) if metadata.leading_digits is not None else None
        regions.append(_Region(leading, general, _by_length(general, types)))
    main = PhoneMetadata.metadata_for_region(names[0], None)
    prefix = main.national_prefix_for_parsing if main is not None else None
    return _Country(tuple(regions), re.compile(prefix) if prefix else None)


def _desc(desc: object) -> _Desc | None:
    """A compiled description, or None where phonenumbers matches nothing (no description, or an
    empty pattern)."""
    pattern = getattr(desc, "national_number_pattern", None)
    if not pattern:
        return None
    return _Desc(frozenset(getattr(desc, "possible_length", None) or ()), re.compile(pattern))
