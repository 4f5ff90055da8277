"""Locales, dates, money and plural rules from CLDR, through Babel.

The one module that imports Babel: it parses a locale name (``nl-BE``, ``nl_BE``) into Babel's
canonical spelling, formats a date and an amount as the locale writes them, and hands the domain a
:class:`~tenant_worker.domain.plurals.PluralRule`. Babel only reads its bundled CLDR data (no I/O
beyond that, no global state we change), so services may call it directly, as they call ``phones``.
Locale objects and rules are cached: a batch renders hundreds of SMS in a handful of locales.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from decimal import Decimal
from typing import Literal

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_currency

from tenant_worker.domain.model import DATE_STYLES, DEFAULT_DATE_STYLE
from tenant_worker.domain.plurals import CLDR_ORDER, PluralRule

DateStyle = Literal["short", "medium", "long"]

# Whole numbers of days a reminder can show are far below this; it is wide enough to meet every
# category CLDR gives whole numbers (Arabic's "other" starts at 100, Polish "many" at 5).
_WHOLE_NUMBER_PROBE = range(0, 1000)


# Babel would also accept "en_US.UTF-8" or "en_US@euro" (POSIX spellings); a customer file says "en_US".
_NAME = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,3}")


class UnknownLocale(ValueError):
    """A locale name Babel (CLDR) does not know."""


def canonical_locale(name: str) -> str:
    """``name`` in Babel's spelling (``nl-be`` -> ``nl_BE``), or :class:`UnknownLocale`.

    Only locales with CLDR data are accepted, so a formatted reminder never falls back silently."""
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise UnknownLocale(f"locale {name!r} is not a CLDR locale (e.g. nl_NL, fr_BE, en)")
    return str(_locale(name))


def is_known_locale(name: str) -> bool:
    """Whether CLDR has data for ``name`` (in either ``nl_BE`` or ``nl-BE`` spelling)."""
    try:
        canonical_locale(name)
    except UnknownLocale:
        return False
    return True


def usable_locale(name: str) -> str:
    """``name`` in canonical form if CLDR knows it, else its language if CLDR knows that, else ``en``:
    tenants created before locales were checked against CLDR still get their SMS formatted."""
    for candidate in (name, name.replace("-", "_").split("_")[0]):
        if is_known_locale(candidate):
            return canonical_locale(candidate)
    return "en"


def fallback_chain(name: str) -> tuple[str, ...]:
    """The locale and its parents, most specific first: ``nl_BE`` -> ``("nl_BE", "nl")``; also
    ``zh_Hant_TW`` -> ``("zh_Hant_TW", "zh_Hant", "zh")``. Unknown names give just themselves."""
    try:
        parts = canonical_locale(name).split("_")
    except UnknownLocale:
        return (name,)
    return tuple("_".join(parts[:end]) for end in range(len(parts), 0, -1))


def format_day(day: dt.date, locale: str, style: str = DEFAULT_DATE_STYLE) -> str:
    """``day`` as ``locale`` writes it in ``style`` (short, medium or long), e.g. ``5 maart 2027``."""
    return format_date(day, _style(style), locale=_locale(locale))


def format_money(amount: Decimal, currency: str, locale: str) -> str:
    """``amount`` with ``currency`` as ``locale`` writes it: ``€ 49,00`` (nl), ``49,00 €`` (fr),
    ``€49.00`` (en); unknown currency codes are written as the code."""
    return format_currency(amount, currency, locale=_locale(locale))


def plural_rule(locale: str) -> PluralRule:
    """The CLDR plural rule of ``locale`` (cached), in the domain's terms."""
    return _plural_rule(canonical_locale(locale))


@functools.lru_cache(maxsize=512)
def _plural_rule(locale: str) -> PluralRule:
    rule = _locale(locale).plural_form
    present = set(rule.tags) | {"other"}
    categories = tuple(name for name in CLDR_ORDER if name in present)
    reached = {rule(number) for number in _WHOLE_NUMBER_PROBE}
    whole = tuple(name for name in categories if name in reached)
    return PluralRule(locale=locale, categories=categories, whole=whole, category_of=rule)


@functools.lru_cache(maxsize=512)
def _locale(name: str) -> Locale:
    try:
        return Locale.parse(name.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError) as exc:
        raise UnknownLocale(f"locale {name!r} is not a CLDR locale (e.g. nl_NL, fr_BE, en)") from exc


def _style(style: str) -> DateStyle:
    if style == "short":
        return "short"
    if style == "medium":
        return "medium"
    if style == "long":
        return "long"
    raise ValueError(f"date style {style!r} must be one of {', '.join(DATE_STYLES)}")
