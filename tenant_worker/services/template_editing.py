"""Saving a template from the HTTP API and showing the tenant what it will look like and cost.

The template is validated and saved by ``services.tenants.save_template``, as the CLI saves it (unknown
placeholders, plural forms for the locale, syntax, and the worst case against the tenant's
``max_segments``). The preview is ``services.template_preview``'s, the one ``tenant template preview``
prints: rendered with sample values in the template's locale, and measured at its worst case, because
operators bill per segment and a tenant editing its text on a screen should see the price before its
customers get the message.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from tenant_worker.adapters import cldr
from tenant_worker.domain.records import Template, Tenant
from tenant_worker.domain.storage import UnitOfWork, UnitOfWorkFactory
from tenant_worker.domain.templates import TemplateError
from tenant_worker.services.rendering import ChosenTemplate
from tenant_worker.services.template_preview import preview_one
from tenant_worker.services.tenants import local_today, save_template


@dataclass(frozen=True)
class SavedTemplate:
    """A template as saved, rendered with sample values, and its cost: the sample's and the worst case's."""

    template: Template
    preview: str
    encoding: str
    segments: int
    length: int
    worst_case_segments: int
    worst_case_encoding: str
    max_segments: int


def preview_template(tenant: Tenant, template: Template, today: dt.date | None = None) -> SavedTemplate:
    """Render a valid ``template`` for a sample customer whose subscription expires in the template's
    window (the tenant's smallest window when it has none), in the template's locale."""
    window = template.window_days or min(tenant.windows)
    chosen = ChosenTemplate(template.body, cldr.usable_locale(template.locale or tenant.locale))
    day = today or local_today(tenant.timezone)
    row = preview_one(tenant, chosen, window, day, template.window_days, template.locale, None)
    if row.sample is None or row.worst is None:
        raise TemplateError([row.error or "the template cannot be rendered"])
    return SavedTemplate(
        template,
        row.sample.body,
        row.sample.encoding,
        row.sample.segments,
        row.sample.length,
        row.worst.segments,
        row.worst.encoding,
        tenant.max_segments,
    )


def save_with_preview(
    tx: UnitOfWork, slug: str, body: str, window_days: int | None, locale: str | None
) -> SavedTemplate:
    """Validate and save the template of (window, locale) in ``tx`` (a ``TemplateError`` names every
    problem), and return its preview."""
    template = save_template(tx, slug, body, window_days, locale)
    return preview_template(tx.catalog.find_tenant(slug), template)


def templates_of(uow: UnitOfWorkFactory, slug: str) -> tuple[Tenant, list[Template]]:
    """The tenant and its templates, ordered by window then locale (any last)."""
    with uow() as tx:
        tenant = tx.catalog.find_tenant(slug)
        return tenant, tx.catalog.templates(tenant.id)
