"""Saving a template from the HTTP API and showing the tenant what it will look like and cost.

The template is validated and saved by ``services.tenants.save_template``, as the CLI saves it (unknown
placeholders, syntax, and the worst case against the tenant's ``max_segments``). The preview renders it
with sample values, and reports the worst case too, because operators bill per segment and a tenant
editing its text on a screen should see the price before its customers get the message.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from tenant_worker.domain.records import Template, Tenant
from tenant_worker.domain.sms_limits import worst_case_sms
from tenant_worker.domain.storage import UnitOfWork, UnitOfWorkFactory
from tenant_worker.domain.templates import render_template
from tenant_worker.services.tenants import local_today, save_template

# Plausible values for the preview; the tenant's own name is used for {org_name}.
SAMPLE_VALUES = {"customer_name": "Jane Doe", "plan": "Fiber 100", "amount": "49.00", "currency": "EUR"}


@dataclass(frozen=True)
class TemplatePreview:
    """A template as saved, rendered with sample values, and its cost: the sample's and the worst case's."""

    template: Template
    preview: str
    encoding: str
    segments: int
    length: int
    worst_case_segments: int
    worst_case_encoding: str
    max_segments: int


def preview_template(tenant: Tenant, template: Template, now: dt.datetime | None = None) -> TemplatePreview:
    """Render a valid ``template`` for a sample customer whose subscription expires in the template's
    window (the tenant's smallest window when it has none)."""
    days_left = template.window_days or min(tenant.windows)
    expires_on = local_today(tenant.timezone, now) + dt.timedelta(days=days_left)
    values = {
        **SAMPLE_VALUES,
        "days_left": str(days_left),
        "expires_on": expires_on.isoformat(),
        "org_name": tenant.name,
    }
    sample = render_template(template.body, values)
    worst = worst_case_sms(template.body, tenant.name)
    return TemplatePreview(
        template,
        sample.body,
        sample.encoding,
        sample.segments,
        sample.length,
        worst.segments,
        worst.encoding,
        tenant.max_segments,
    )


def save_with_preview(
    tx: UnitOfWork, slug: str, body: str, window_days: int | None, locale: str | None
) -> TemplatePreview:
    """Validate and save the template of (window, locale) in ``tx`` (a ``TemplateError`` names every
    problem), and return its preview."""
    save_template(tx, slug, body, window_days, locale)
    return preview_template(tx.catalog.find_tenant(slug), Template(window_days, locale, body))


def templates_of(uow: UnitOfWorkFactory, slug: str) -> tuple[Tenant, list[Template]]:
    """The tenant and its templates, ordered by window then locale (any last)."""
    with uow() as tx:
        tenant = tx.catalog.find_tenant(slug)
        return tenant, tx.catalog.templates(tenant.id)
