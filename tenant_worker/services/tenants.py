"""Creating a tenant with its default template, saving templates, and describing a tenant."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from tenant_worker.adapters import cldr
from tenant_worker.domain.localtime import SendingWindow, format_hhmm
from tenant_worker.domain.model import TenantSpec, ValidationError
from tenant_worker.domain.records import Template, Tenant
from tenant_worker.domain.storage import UnitOfWork
from tenant_worker.domain.templates import TemplateError, upgrade_amount_placeholders, validate_template
from tenant_worker.domain.windows import normalize_windows
from tenant_worker.services.rendering import check_template

# No plural field: the default text must be valid whatever the tenant's locale (a Polish tenant's
# plural fields need three forms); {amount} carries its currency ("€49.00").
DEFAULT_TEMPLATE = (
    "Hi {customer_name}, your {plan} subscription with {org_name} expires on {expires_on} "
    "(days left: {days_left}). Please pay {amount} to stay connected."
)


def create_tenant(uow: UnitOfWork, spec: TenantSpec, template: str | None = None, *, shard_count: int) -> Tenant:
    """Validate everything first, then create the tenant (with its queue) and its default template in
    one transaction."""
    spec = spec.validated()
    if not cldr.is_known_locale(spec.locale):
        raise ValidationError([f"locale {spec.locale!r} is not a CLDR locale (e.g. nl_NL, fr_BE, en)"])
    body = upgrade_amount_placeholders(template or DEFAULT_TEMPLATE)
    check_template(
        body,
        spec.name,
        spec.max_segments,
        locale=spec.locale,
        date_style=spec.date_style,
        normalize_text=spec.normalize_text,
        what="template" if template else "the default template",
    )
    tenant = uow.catalog.create_tenant(spec, shard_count)
    uow.catalog.save_template(tenant.id, Template(None, None, body))
    return tenant


def save_template(
    uow: UnitOfWork, slug: str, body: str, window_days: int | None = None, locale: str | None = None
) -> Template:
    """Validate a template when it is saved (never at send time), also against the tenant's
    ``max_segments`` with every placeholder at its worst case in the template's locale (the tenant's for
    "any"), and store it for the tenant; ``locale`` is stored in CLDR's spelling (``fr-be`` -> ``fr_BE``) and
    ``{amount} {currency}`` as ``{amount}``. Returns the template as stored."""
    body = upgrade_amount_placeholders(body)
    validate_template(body)
    tenant = uow.catalog.find_tenant(slug)
    if window_days is not None and window_days not in tenant.windows:
        raise TemplateError([f"window {window_days} is not one of the tenant's windows {tenant.windows}"])
    if locale is not None:
        try:
            locale = cldr.canonical_locale(locale)
        except cldr.UnknownLocale as exc:
            raise TemplateError([str(exc)]) from None
    check_template(
        body,
        tenant.name,
        tenant.max_segments,
        locale=locale or tenant.locale,
        date_style=tenant.date_style,
        normalize_text=tenant.normalize_text,
    )
    template = Template(window_days, locale, body)
    uow.catalog.save_template(tenant.id, template)
    return template


def local_today(timezone: str, now: dt.datetime | None = None) -> dt.date:
    """The calendar date in the tenant's time zone at ``now`` (default: the current instant)."""
    instant = now or dt.datetime.now(dt.UTC)
    return instant.astimezone(zoneinfo.ZoneInfo(timezone)).date()


def sending_window(tenant: Tenant) -> SendingWindow:
    """The tenant's allowed local sending hours (quiet hours are everything outside them)."""
    return tenant.sending_window


def tenant_windows(tenant: Tenant) -> tuple[int, ...]:
    """The tenant's windows in canonical (descending) order."""
    return normalize_windows(tenant.windows)


def describe_tenant(uow: UnitOfWork, tenant: Tenant, now: dt.datetime | None = None) -> dict[str, Any]:
    """A JSON-ready description of a tenant with its templates."""
    templates = uow.catalog.templates(tenant.id)
    return {
        "slug": tenant.slug,
        "name": tenant.name,
        "timezone": tenant.timezone,
        "locale": tenant.locale,
        "originator": tenant.originator,
        "windows": list(tenant_windows(tenant)),
        "status": tenant.status,
        "send_time": format_hhmm(tenant.send_time),
        "sending_window": str(sending_window(tenant)),
        "queue": tenant.queue,
        "rate_per_second": tenant.rate_per_second,
        "max_segments": tenant.max_segments,
        "date_style": tenant.date_style,
        "normalize_text": tenant.normalize_text,
        "local_today": local_today(tenant.timezone, now).isoformat(),
        "templates": [{"window": t.window_days, "locale": t.locale, "body": t.body} for t in templates],
    }
