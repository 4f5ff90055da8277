"""What each of a tenant's templates looks like on a handset, and what it costs: ``tenant template preview``.

Every stored (window, locale) template is rendered for each window it serves with sample values, and
measured at its worst case (every placeholder at its widest in the template's locale, the longest form
of each plural field), with the encoding, the segment count and the characters that force UCS-2, so a
tenant sees before any SMS goes out that a pasted curly apostrophe doubles its cost. Customer locales
(``--locale fr_BE``) add the text a customer of that locale would get, through the same selection as
the send path.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from tenant_worker.adapters import cldr
from tenant_worker.domain.gsm_text import non_gsm_chars, normalize_gsm
from tenant_worker.domain.records import SendJob, Tenant
from tenant_worker.domain.sms_limits import worst_case_sms
from tenant_worker.domain.storage import UnitOfWork
from tenant_worker.domain.templates import RenderedSms, TemplateError
from tenant_worker.services.rendering import ChosenTemplate, build_sms, template_selector, worst_case_formatted
from tenant_worker.services.tenants import local_today

SAMPLE_NAME = "Alex Jansen"
SAMPLE_PLAN = "Fiber 1000"
SAMPLE_AMOUNT = Decimal("1249.50")
SAMPLE_CURRENCY = "EUR"


@dataclass(frozen=True)
class Measured:
    """A rendered body's cost and the characters in it that force UCS-2 (none for GSM-7)."""

    body: str
    encoding: str
    segments: int
    length: int
    ucs2_chars: tuple[str, ...]

    @classmethod
    def of(cls, rendered: RenderedSms, own_text: str) -> Measured:
        """Measure ``rendered``; ``own_text`` is the text the tenant wrote or stored (template, names).

        A formatted value's no-break space is kept only in an SMS that is UCS-2 anyway, so it never
        forces UCS-2: only characters of ``own_text`` or with no GSM-7 stand-in are named."""
        chars = tuple(c for c in non_gsm_chars(rendered.body) if normalize_gsm(c) == c or c in own_text)
        return cls(rendered.body, rendered.encoding, rendered.segments, rendered.length, chars)


@dataclass(frozen=True)
class TemplatePreview:
    """One template for one window: ``template_locale`` is its scope (None: any), ``locale`` the one its
    values are formatted in; ``customer_locale`` is set for the rows asked for with ``--locale``."""

    window: int
    template_window: int | None
    template_locale: str | None
    locale: str
    customer_locale: str | None
    sample: Measured | None
    worst: Measured | None
    fits: bool
    error: str | None = None


def preview_templates(
    uow: UnitOfWork, slug: str, customer_locales: Sequence[str] = (), today: dt.date | None = None
) -> tuple[Tenant, list[TemplatePreview]]:
    """Preview every (window, locale) template of the tenant ``slug``, then what a customer of each of
    ``customer_locales`` would read in each window."""
    tenant = uow.catalog.find_tenant(slug)
    templates = uow.catalog.templates(tenant.id)
    day = today or local_today(tenant.timezone)
    rows: list[TemplatePreview] = []
    for template in templates:
        for window in tenant.ordered_windows if template.window_days is None else (template.window_days,):
            locale = cldr.usable_locale(template.locale or tenant.locale)
            chosen = ChosenTemplate(template.body, locale)
            rows.append(preview_one(tenant, chosen, window, day, template.window_days, template.locale, None))
    select = template_selector(tenant, templates)
    for customer in customer_locales:
        canonical = cldr.canonical_locale(customer)
        for window in tenant.ordered_windows:
            chosen = select(window, canonical)
            scope = next(
                (t for t in templates if t.body == chosen.body and t.window_days in (window, None)), templates[0]
            )
            rows.append(preview_one(tenant, chosen, window, day, scope.window_days, scope.locale, canonical))
    return tenant, rows


def preview_one(
    tenant: Tenant,
    chosen: ChosenTemplate,
    window: int,
    today: dt.date,
    template_window: int | None,
    template_locale: str | None,
    customer_locale: str | None,
) -> TemplatePreview:
    job = SendJob(
        reminder_id=0,
        window_days=window,
        expires_on=today + dt.timedelta(days=window),
        customer_name=SAMPLE_NAME,
        phone=None,
        plan=SAMPLE_PLAN,
        amount=SAMPLE_AMOUNT,
        currency=SAMPLE_CURRENCY,
        locale=customer_locale,
    )
    locale = cldr.usable_locale(chosen.locale)
    try:
        own_text = chosen.body + tenant.name + SAMPLE_NAME + SAMPLE_PLAN
        sample = Measured.of(build_sms(tenant, chosen, job, today), own_text)
        worst = Measured.of(
            worst_case_sms(
                chosen.body,
                normalize_gsm(tenant.name) if tenant.normalize_text else tenant.name,
                formatted=worst_case_formatted(locale, tenant.date_style),
                plurals=cldr.plural_rule(locale),
                normalize_text=normalize_gsm if tenant.normalize_text else None,
            ),
            own_text,
        )
    except TemplateError as exc:
        return TemplatePreview(window, template_window, template_locale, locale, customer_locale, sample=None,
                               worst=None, fits=False, error=str(exc))  # fmt: skip
    return TemplatePreview(
        window,
        template_window,
        template_locale,
        locale,
        customer_locale=customer_locale,
        sample=sample,
        worst=worst,
        fits=worst.segments <= tenant.max_segments,
    )
