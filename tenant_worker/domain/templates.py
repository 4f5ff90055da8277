"""Tenant-written SMS templates: validate on save, render on send, measure what it costs.

Each tenant writes its own reminder text, so the text is untrusted. It is checked when it is
saved (``validate_template``) so that a broken template never reaches the sending path, and it is
rendered by plain string concatenation rather than ``str.format`` so that a template can never
reach into the attributes of the values it is given.

A template may use only these placeholders, written as ``{name}``:

- ``{customer_name}``: the customer's name as the tenant stores it.
- ``{days_left}``: whole days until the subscription expires, e.g. ``3``.
- ``{expires_on}``: the expiry date as the customer's locale writes it in the tenant's date style,
  e.g. ``5 maart 2027`` (nl, long).
- ``{expires_on_iso}``: the expiry date as an ISO 8601 date, e.g. ``2027-03-05``.
- ``{amount}``: the amount with its currency as the locale writes it, e.g. ``€ 49,00``, ``49,00 €``.
- ``{amount_raw}``: the bare amount with two decimals and a point, e.g. ``49.00``.
- ``{currency}``: the currency of the amount, e.g. ``EUR``.
- ``{plan}``: the name of the customer's plan.
- ``{org_name}``: the tenant's (organisation's) display name.

A plural field, ``{days_left|dag|dagen}``, writes the form the locale's CLDR plural rule picks for the
number (see :mod:`tenant_worker.domain.plurals`).

Write ``{{`` and ``}}`` for literal braces. Conversions (``{plan!r}``), format specs
(``{amount:>10}``), positional fields (``{}``) and attribute or index access are rejected: values
arrive as ready-formatted strings.

``measure_sms`` counts what a body costs on the wire (GSM 03.38 septets or UCS-2 code units, and
the number of concatenated segments), because operators bill per segment.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from tenant_worker.domain.plurals import PluralRule, plural_problems, split_plural_field

PLACEHOLDERS: Mapping[str, str] = MappingProxyType(
    {
        "customer_name": "The customer's name as the tenant stores it.",
        "days_left": "Whole days until the subscription expires, e.g. 3.",
        "expires_on": "The expiry date as the customer's locale writes it (tenant's date style), e.g. 5 maart 2027.",
        "expires_on_iso": "The expiry date as an ISO 8601 date, e.g. 2027-03-05.",
        "amount": "The amount with its currency as the customer's locale writes it, e.g. € 49,00.",
        "amount_raw": "The bare amount, two decimals and a point, e.g. 49.00 (write {currency} next to it).",
        "currency": "The currency of the amount, e.g. EUR.",
        "plan": "The name of the customer's plan.",
        "org_name": "The tenant's (organisation's) display name.",
    }
)

MAX_TEMPLATE_LENGTH = 1000
"""Longest template text accepted, in characters; longer texts would cost many segments per send."""

GSM_7 = "GSM-7"
UCS_2 = "UCS-2"

# GSM 03.38 basic character set, in table order (0x1B, the escape to the extension table, omitted).
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039eÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Reached through the escape septet, so each of these costs two septets.
_GSM_EXTENSION = frozenset("\f^{}\\[~]|€")

_BRACE_HINT = "write {{ or }} for a literal brace"

_GSM_SINGLE_SEPTETS = 160
_GSM_PART_SEPTETS = 153  # 7 septets of each part go to the concatenation header
_UCS2_SINGLE_UNITS = 70
_UCS2_PART_UNITS = 67


class TemplateError(ValueError):
    """A template cannot be saved or rendered; ``problems`` lists every reason, for the tenant to fix."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class SmsMeasure:
    """What a body costs: its encoding, its length in that encoding's units, and its segment count."""

    encoding: str
    length: int
    segments: int


@dataclass(frozen=True)
class RenderedSms:
    """A rendered body with its cost, so callers can log or cap segments without measuring again."""

    body: str
    encoding: str
    segments: int
    length: int


_Piece = tuple[str, str | None, str | None, str | None]


LEGACY_AMOUNT_SPELLINGS = ("{amount} {currency}", "{currency} {amount}")
"""How templates wrote money before ``{amount}`` carried its currency; saved as ``{amount}`` now."""


def upgrade_amount_placeholders(text: str) -> str:
    """``text`` with ``{amount} {currency}`` (or ``{currency} {amount}``) written as ``{amount}``.

    ``{amount}`` now writes the currency as the locale does ("€ 49,00", "49,00 €"), so the old
    spelling would show it twice ("€ 49,00 EUR"). Templates are upgraded when saved, and migration
    0013 upgraded the stored ones; ``{amount_raw} {currency}`` still writes "49.00 EUR"."""
    for legacy in LEGACY_AMOUNT_SPELLINGS:
        text = text.replace(legacy, "{amount}")
    return text


def validate_template(text: str, plurals: PluralRule | None = None) -> None:
    """Raise ``TemplateError`` listing every problem in ``text``; called on save so sending never fails.

    ``plurals`` is the rule of the template's locale: with it, every plural field must give as many
    forms as the locale has categories (without it only the field's syntax is checked)."""
    problems: list[str] = []
    if not text.strip():
        problems.append("template is empty")
    if len(text) > MAX_TEMPLATE_LENGTH:
        problems.append(f"template is {len(text):,} characters long; the limit is {MAX_TEMPLATE_LENGTH:,}")
    for _literal, field, spec, conversion in _parse_reporting(text, problems):
        if field is not None:
            problems.extend(_field_problems(field, spec, conversion, plurals))
    if problems:
        raise TemplateError(list(dict.fromkeys(problems)))


def render_template(
    text: str,
    values: Mapping[str, str],
    plurals: PluralRule | None = None,
    *,
    normalize_text: Callable[[str], str] | None = None,
) -> RenderedSms:
    """Substitute ``values`` into a valid template and measure the result.

    The output is built by concatenating literal pieces and plain strings, never with ``str.format``,
    so a value is inserted verbatim (braces and all) and no attribute of any object is reachable.
    ``plurals`` picks the forms of plural fields (required when the template has any);
    ``normalize_text``, when given, is applied to the template's own text (literals and plural forms),
    never to the values.
    """
    validate_template(text, plurals)
    own = normalize_text or _unchanged
    parts: list[str] = []
    missing: list[str] = []
    for literal, field, _spec, _conversion in string.Formatter().parse(text):
        parts.append(own(literal))
        if field is None:
            continue
        plural = split_plural_field(field)
        if plural is not None:
            parts.append(own(_plural_form(plural[0], plural[1], values, plurals)))
            continue
        value = values.get(field)
        if value is None:
            missing.append(f"no value for placeholder {{{field}}}")
        elif not isinstance(value, str):
            raise TypeError(f"value for {{{field}}} must be str, not {type(value).__name__}")
        else:
            parts.append(value)
    if missing:
        raise TemplateError(list(dict.fromkeys(missing)))
    body = "".join(parts)
    measure = measure_sms(body)
    return RenderedSms(body=body, encoding=measure.encoding, segments=measure.segments, length=measure.length)


def _unchanged(text: str) -> str:
    return text


def _plural_form(name: str, forms: list[str], values: Mapping[str, str], plurals: PluralRule | None) -> str:
    if plurals is None:
        raise TemplateError([f"plural field {{{name}|...}} needs the locale's plural rule"])
    value = values.get(name)
    if value is None or not value.lstrip("-").isdigit():
        raise TemplateError([f"plural field {{{name}|...}} needs a whole number, not {value!r}"])
    return plurals.pick(forms, int(value))


def is_gsm_char(char: str) -> bool:
    """Whether ``char`` is in the GSM 03.38 basic or extension table (so it keeps an SMS in GSM-7)."""
    return char in _GSM_BASIC or char in _GSM_EXTENSION


def measure_sms(body: str) -> SmsMeasure:
    """Return the encoding, length and segment count an SMS gateway will use for ``body``.

    GSM-7 is used when every character is in the GSM 03.38 basic or extension table, else UCS-2.
    Segments are filled greedily without splitting an escape sequence or a surrogate pair, as
    handsets and gateways do, so the count can exceed ``ceil(length / part_size)``.
    """
    septets = [_gsm_septets(char) for char in body]
    if all(cost is not None for cost in septets):
        gsm_costs = [cost for cost in septets if cost is not None]
        return _measure(GSM_7, gsm_costs, _GSM_SINGLE_SEPTETS, _GSM_PART_SEPTETS)
    ucs2_costs = [2 if ord(char) > 0xFFFF else 1 for char in body]
    return _measure(UCS_2, ucs2_costs, _UCS2_SINGLE_UNITS, _UCS2_PART_UNITS)


def _gsm_septets(char: str) -> int | None:
    if char in _GSM_BASIC:
        return 1
    if char in _GSM_EXTENSION:
        return 2
    return None


def _measure(encoding: str, costs: list[int], single_limit: int, part_limit: int) -> SmsMeasure:
    length = sum(costs)
    if length <= single_limit:
        return SmsMeasure(encoding=encoding, length=length, segments=1)
    segments, used = 1, 0
    for cost in costs:
        if used + cost > part_limit:
            segments, used = segments + 1, 0
        used += cost
    return SmsMeasure(encoding=encoding, length=length, segments=segments)


def _parse_reporting(text: str, problems: list[str]) -> Iterator[_Piece]:
    """Yield ``string.Formatter().parse`` pieces, turning syntax errors into problems.

    ``parse`` stops at the first error, so parsing resumes behind a stray ``}`` or a malformed
    field: the tenant hears about every mistake in one go. An unclosed ``{`` swallows the rest.
    """
    offset = 0
    while True:
        try:
            yield from string.Formatter().parse(text[offset:])
            return
        except ValueError as err:
            located = _locate_syntax_error(text, offset)
            if located is None:
                problems.append(f"cannot parse template: {err}; {_BRACE_HINT}")
                return
            start, end = located
            piece = text[start:end] if end - start <= 40 else text[start : start + 37] + "..."
            problems.append(f'cannot parse "{piece}" at character {start + 1}: {err}; {_BRACE_HINT}')
            if end >= len(text):
                return
            offset = end


def _locate_syntax_error(text: str, offset: int) -> tuple[int, int] | None:
    """Span of the first stray ``}``, unclosed ``{`` (to the end) or unparsable field from ``offset``."""
    index = offset
    while index < len(text):
        char = text[index]
        if char in "{}" and text.startswith(char * 2, index):
            index += 2
        elif char == "}":
            return index, index + 1
        elif char == "{":
            depth, end = 1, index + 1
            while end < len(text) and depth:
                depth += {"{": 1, "}": -1}.get(text[end], 0)
                end += 1
            if depth or not _parses(text[index:end]):
                return index, end
            index = end
        else:
            index += 1
    return None


def _parses(text: str) -> bool:
    try:
        list(string.Formatter().parse(text))
    except ValueError:
        return False
    return True


def _field_problems(field: str, spec: str | None, conversion: str | None, plurals: PluralRule | None) -> list[str]:
    bang = "" if conversion is None else f"!{conversion}"
    colon = f":{spec}" if spec else ""
    source = f"{{{field}{bang}{colon}}}"
    problems: list[str] = []
    plural = split_plural_field(field)
    if plural is not None:
        problems.extend(plural_problems(source, plural[0], plural[1], plurals))
    elif field == "" or field.isdigit():
        problems.append(f"positional field {source} is not allowed; name a placeholder such as {{plan}}")
    elif "." in field or "[" in field:
        problems.append(f"attribute or index access in {source} is not allowed; use a bare placeholder name")
    elif field not in PLACEHOLDERS:
        problems.append(f"unknown placeholder {source}; allowed: {', '.join(sorted(PLACEHOLDERS))}")
    if bang:
        problems.append(f"conversion {bang} in {source} is not allowed; placeholders take no conversion")
    if colon:
        problems.append(f"format spec {colon} in {source} is not allowed; values arrive already formatted")
    return problems
