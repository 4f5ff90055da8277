"""Choosing a tenant's template for a reminder and rendering it in the customer's language.

A customer reads the template of their own locale when the tenant has one: the customer's locale and
its parents first (``fr_BE``, then ``fr``), for the reminder's window and then for any window; then,
as before per-customer locales, the tenant's: (window, tenant locale), (window, any), (any, tenant
locale), (any, any). The tenant always has the last one (created with the tenant). A language match
wins over a window match, because a French customer is better served by the French text for any
window than by the Dutch text of the exact window.

Values are formatted (CLDR, through ``adapters.cldr``) in the locale the chosen text is written in: the
customer's own when the text is in the customer's language, else the tenant's, so a Dutch fallback
text never carries a French date. Formatted values are normalised to GSM-7 (``domain.gsm_text``) so
that formatting never turns an SMS into UCS-2; the tenant's own text too when it asks for it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from tenant_worker.adapters import cldr
from tenant_worker.domain.gsm_text import normalize_gsm
from tenant_worker.domain.records import SendJob, Template, Tenant
from tenant_worker.domain.sms_limits import MAX_AMOUNT, check_template_fits
from tenant_worker.domain.templates import UCS_2, RenderedSms, render_template, validate_template


@dataclass(frozen=True)
class ChosenTemplate:
    """A template body and the locale its values are formatted (and its plurals chosen) in."""

    body: str
    locale: str


def template_selector(tenant: Tenant, templates: Sequence[Template]) -> Callable[[int, str | None], ChosenTemplate]:
    """Return ``(window, customer locale or None) -> ChosenTemplate`` by the order of the module docs."""
    # Compared in CLDR's spelling, so a template saved for "fr-be" serves a customer of "fr_BE".
    by_scope = {(t.window_days, _canonical(t.locale)): t.body for t in templates}
    tenant_chain = cldr.fallback_chain(tenant.locale)

    def select(window_days: int, customer_locale: str | None) -> ChosenTemplate:
        if customer_locale:
            own = [loc for loc in cldr.fallback_chain(customer_locale) if loc not in tenant_chain]
            for window, loc in [(w, loc) for loc in own for w in (window_days, None)]:
                found = by_scope.get((window, loc))
                if found is not None:
                    return ChosenTemplate(found, customer_locale)
        for scope in _tenant_scopes(window_days, tenant_chain):
            if scope in by_scope:
                speaks = customer_locale is not None and _language(customer_locale) == _language(tenant.locale)
                return ChosenTemplate(by_scope[scope], customer_locale if customer_locale and speaks else tenant.locale)
        raise LookupError(f"tenant {tenant.slug} has no SMS template")

    return select


def template_chooser(tenant: Tenant, templates: Sequence[Template]) -> Callable[[int], str]:
    """Return ``window -> template body`` for a customer of the tenant's own locale (kept for callers
    that have no customer at hand; :func:`template_selector` is the per-customer one)."""
    select = template_selector(tenant, templates)
    return lambda window_days: select(window_days, None).body


def build_sms(
    tenant: Tenant, template: str | ChosenTemplate, job: SendJob, today: dt.date, *, locale: str | None = None
) -> RenderedSms:
    """Render ``template`` for one reminder; ``days_left`` is counted from ``today`` (tenant-local).

    The values are formatted in ``locale``, else the chosen template's locale, else the tenant's, and
    normalised to GSM-7; only when the SMS is UCS-2 anyway (Arabic text, a Polish "ł") are they sent as
    CLDR writes them (no-break spaces, bidi marks), unless that would cost another segment."""
    body, chosen = (template.body, template.locale) if isinstance(template, ChosenTemplate) else (template, None)
    use = cldr.usable_locale(locale or chosen or tenant.locale)
    values = {
        "customer_name": job.customer_name,
        "days_left": str((job.expires_on - today).days),
        "expires_on_iso": job.expires_on.isoformat(),
        "amount_raw": f"{job.amount:.2f}",
        "currency": job.currency,
        "plan": job.plan,
        "org_name": normalize_gsm(tenant.name) if tenant.normalize_text else tenant.name,
    }
    own_text = normalize_gsm if tenant.normalize_text else None
    plurals = cldr.plural_rule(use)
    formatted = formatted_values(use, tenant.date_style, job.expires_on, job.amount, job.currency, normalize=False)
    gsm = {name: normalize_gsm(value) for name, value in formatted.items()}
    rendered = render_template(body, values | gsm, plurals, normalize_text=own_text)
    if rendered.encoding == UCS_2 and gsm != formatted:
        as_written = render_template(body, values | formatted, plurals, normalize_text=own_text)
        if as_written.segments <= rendered.segments:
            return as_written
    return rendered


def formatted_values(
    locale: str, date_style: str, expires_on: dt.date, amount: Decimal, currency: str, *, normalize: bool = True
) -> dict[str, str]:
    """``expires_on`` and ``amount`` as ``locale`` writes them, normalised to GSM-7 unless ``normalize``
    is false (a CLDR no-break space must never be what turns an SMS into UCS-2)."""
    values = {
        "expires_on": cldr.format_day(expires_on, locale, date_style),
        "amount": cldr.format_money(amount, currency, locale),
    }
    return {name: normalize_gsm(value) for name, value in values.items()} if normalize else values


def check_template(
    body: str,
    tenant_name: str,
    max_segments: int,
    *,
    locale: str,
    date_style: str,
    normalize_text: bool,
    what: str = "template",
) -> None:
    """Validate ``body`` as written in ``locale`` (its plural fields need the locale's number of forms)
    and check its worst case, formatted as ``locale`` writes, against ``max_segments``: what saving a
    template (CLI, API, a definition file) checks, so that sending never meets a broken template."""
    rule = cldr.plural_rule(cldr.usable_locale(locale))
    validate_template(body, rule)
    check_template_fits(
        body,
        tenant_name,
        max_segments,
        what,
        formatted=worst_case_formatted(cldr.usable_locale(locale), date_style),
        plurals=rule,
        normalize_text=normalize_gsm if normalize_text else None,
    )


def worst_case_formatted(locale: str, date_style: str) -> dict[str, str]:
    """The widest ``expires_on`` and ``amount`` ``locale`` writes (every month's last two-digit day,
    the largest amount in a currency with a long symbol), for the worst-case length of a template."""
    days = [dt.date(2026, month, 28) for month in range(1, 13)] + [dt.date(2026, 9, 30), dt.date(2026, 12, 31)]
    dates = [normalize_gsm(cldr.format_day(day, locale, date_style)) for day in days]
    amounts = [normalize_gsm(cldr.format_money(MAX_AMOUNT, code, locale)) for code in _WIDE_CURRENCIES]
    return {"expires_on": max(dates, key=len), "amount": max(amounts, key=len)}


# Currencies whose CLDR symbols are long in some locales (e.g. "US$", "CHF", "zł", "R$"); unknown
# codes are written as the code itself ("XXX").
_WIDE_CURRENCIES = ("EUR", "USD", "GBP", "CHF", "PLN", "XXX")


def _tenant_scopes(window_days: int, chain: tuple[str, ...]) -> list[tuple[int | None, str | None]]:
    scopes: list[tuple[int | None, str | None]] = [(window_days, loc) for loc in chain]
    scopes.append((window_days, None))
    scopes += [(None, loc) for loc in chain]
    scopes.append((None, None))
    return scopes


def _language(locale: str) -> str:
    return locale.replace("-", "_").split("_")[0].lower()


def _canonical(locale: str | None) -> str | None:
    if locale is None:
        return None
    try:
        return cldr.canonical_locale(locale)
    except cldr.UnknownLocale:
        return locale
