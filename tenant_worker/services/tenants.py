"""Creating a tenant with its default template, saving templates, and describing a tenant."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from tenant_worker.domain.localtime import SendingWindow, format_hhmm
from tenant_worker.domain.model import LOCALE_PATTERN, TenantSpec
from tenant_worker.domain.records import Template, Tenant
from tenant_worker.domain.sms_limits import check_template_fits
from tenant_worker.domain.storage import UnitOfWork
from tenant_worker.domain.templates import TemplateError, validate_template
from tenant_worker.domain.windows import normalize_windows

# The sms_templates.locale column is VARCHAR(35).
MAX_LOCALE_CHARS = 35

DEFAULT_TEMPLATE = (
    "Hi {customer_name}, your {plan} subscription with {org_name} expires on {expires_on} "
    "({days_left} days left). Please pay {amount} {currency} to stay connected."
)


def create_tenant(uow: UnitOfWork, spec: TenantSpec, template: str | None = None, *, shard_count: int) -> Tenant:
    """Validate everything first, then create the tenant (with its queue) and its default template in
    one transaction."""
    spec = spec.validated()
    body = template or DEFAULT_TEMPLATE
    validate_template(body)
    check_template_fits(body, spec.name, spec.max_segments, "template" if template else "the default template")
    tenant = uow.catalog.create_tenant(spec, shard_count)
    uow.catalog.save_template(tenant.id, Template(None, None, body))
    return tenant


def save_template(
    uow: UnitOfWork, slug: str, body: str, window_days: int | None = None, locale: str | None = None
) -> None:
    """Validate a template when it is saved (never at send time), also against the tenant's
    ``max_segments`` with every placeholder at its worst case, and store it for the tenant."""
    validate_template(body)
    tenant = uow.catalog.find_tenant(slug)
    if window_days is not None and window_days not in tenant.windows:
        raise TemplateError([f"window {window_days} is not one of the tenant's windows {tenant.windows}"])
    if locale is not None and not (len(locale) <= MAX_LOCALE_CHARS and LOCALE_PATTERN.fullmatch(locale)):
        raise TemplateError([f"locale {locale[:40]!r} must look like 'en' or 'nl-NL'"])
    check_template_fits(body, tenant.name, tenant.max_segments)
    uow.catalog.save_template(tenant.id, Template(window_days, locale, body))


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
        "local_today": local_today(tenant.timezone, now).isoformat(),
        "templates": [{"window": t.window_days, "locale": t.locale, "body": t.body} for t in templates],
    }
