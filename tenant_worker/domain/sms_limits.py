"""How long an SMS may get: bounds on customer data, and a tenant's cap on segments per SMS.

Operators bill per segment, so a template is checked against the tenant's ``max_segments`` when it is
saved, with every placeholder at its worst case (:func:`worst_case_sms`). The worst case is written in
the template's own alphabet: the literal text and the tenant's name decide GSM-7 or UCS-2, and each
placeholder is filled to its bound with plain characters of that alphabet. A customer value that
changes the alphabet (a name with a character outside GSM-7 turns the whole SMS into UCS-2, 67
characters per segment instead of 153) can still make one SMS longer: the send path measures every
rendered SMS again and skips one over the cap (:func:`over_segment_limit`, skip reason ``too_long``).
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from decimal import Decimal
from types import MappingProxyType

from tenant_worker.domain.plurals import LONGEST_FORM, PluralRule
from tenant_worker.domain.templates import RenderedSms, TemplateError, render_template
from tenant_worker.domain.windows import MAX_WINDOW_DAYS

MAX_CUSTOMER_NAME_CHARS = 100
"""Longest customer name accepted on import: room for any real full name, not for a 66-segment SMS."""

MAX_PLAN_CHARS = 50
"""Longest plan name accepted on import (product names like "Fiber 1000 Unlimited Family")."""

MAX_EXTERNAL_REF_CHARS = 128
"""Longest external reference accepted on import (the column is VARCHAR(128))."""

MAX_AMOUNT = Decimal("9999999999.99")
"""Largest amount the ``subscriptions.amount`` column (NUMERIC(12, 2)) holds."""

DEFAULT_MAX_SEGMENTS = 3
"""Segments per SMS a tenant allows unless it says otherwise: 459 GSM-7 or 201 UCS-2 characters."""

MAX_SEGMENTS_LIMIT = 10
"""Highest ``max_segments`` a tenant may choose; handsets reassemble this many parts reliably."""

# The widest form each placeholder can take; `org_name` is the tenant's actual name, added per tenant.
_WORST_CASE: Mapping[str, str] = MappingProxyType(
    {
        "customer_name": "x" * MAX_CUSTOMER_NAME_CHARS,
        "plan": "x" * MAX_PLAN_CHARS,
        # Overridden by the locale's own widest forms where the locale is known (services.rendering).
        "amount": f"XXX {MAX_AMOUNT:,.2f}",
        "amount_raw": f"{MAX_AMOUNT:.2f}",
        "currency": "XXX",
        "expires_on": "30 September 2026",
        "expires_on_iso": "2026-12-31",
        # A reminder's days_left never exceeds its window, and windows never exceed MAX_WINDOW_DAYS.
        "days_left": str(MAX_WINDOW_DAYS),
    }
)


def worst_case_values(org_name: str, formatted: Mapping[str, str] | None = None) -> dict[str, str]:
    """The value of every placeholder at its widest, for a tenant called ``org_name``; ``formatted``
    replaces the locale-dependent ones (``expires_on``, ``amount``) by the locale's own widest forms."""
    return {**_WORST_CASE, **(formatted or {}), "org_name": org_name}


def worst_case_sms(
    template: str,
    org_name: str,
    *,
    formatted: Mapping[str, str] | None = None,
    plurals: PluralRule | None = None,
    normalize_text: Callable[[str], str] | None = None,
) -> RenderedSms:
    """Render a valid ``template`` with every placeholder at its widest (and the longest form of each
    plural field) and measure it; ``normalize_text`` as the sending path applies it."""
    rule = LONGEST_FORM if plurals is None else plurals.worst_case()
    return render_template(template, worst_case_values(org_name, formatted), rule, normalize_text=normalize_text)


def check_template_fits(
    template: str,
    org_name: str,
    max_segments: int,
    what: str = "template",
    *,
    formatted: Mapping[str, str] | None = None,
    plurals: PluralRule | None = None,
    normalize_text: Callable[[str], str] | None = None,
) -> None:
    """Raise :class:`TemplateError` naming the worst case when ``template`` may need more than
    ``max_segments`` segments; ``what`` names the template in the message (e.g. ``templates[2]``)."""
    worst = worst_case_sms(template, org_name, formatted=formatted, plurals=plurals, normalize_text=normalize_text)
    if worst.segments <= max_segments:
        return
    unit = "septets" if worst.encoding == "GSM-7" else "UCS-2 characters"
    used = {field for _literal, field, _spec, _conversion in string.Formatter().parse(template) if field}
    values = worst_case_values(org_name, formatted)
    cases = ", ".join(_describe(name, value) for name, value in values.items() if name in used)
    raise TemplateError(
        [
            f"{what} can need {worst.segments} SMS segments ({worst.encoding}, {worst.length} {unit} in the worst "
            f"case{': ' + cases if cases else ''}); the tenant allows {max_segments} (max_segments): "
            "shorten the template or raise max_segments"
        ]
    )


def over_segment_limit(rendered: RenderedSms, max_segments: int) -> str | None:
    """Why a rendered SMS must not be sent (it needs more segments than the tenant allows), or None."""
    if rendered.segments <= max_segments:
        return None
    return (
        f"rendered SMS needs {rendered.segments} segments ({rendered.encoding}, {rendered.length} units); "
        f"the tenant allows {max_segments}"
    )


def _describe(name: str, value: str) -> str:
    if name in ("customer_name", "plan"):
        return f"{{{name}}} {len(value)} characters"
    if name == "org_name":
        return f"{{{name}}} {value!r}" if len(value) <= 30 else f"{{{name}}} {len(value)} characters"
    return f"{{{name}}} {value}"
