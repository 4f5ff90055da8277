"""Choosing a tenant's template for a reminder and rendering it with the customer's values."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from tenant_worker.domain.records import SendJob, Template, Tenant
from tenant_worker.domain.templates import RenderedSms, render_template


def template_chooser(tenant: Tenant, templates: Sequence[Template]) -> Callable[[int], str]:
    """Return ``window -> template body``, most specific first: (window, locale), (window, any),
    (any, locale), (any, any); the tenant always has the last one (created with the tenant)."""
    by_scope = {(t.window_days, t.locale): t.body for t in templates}

    def choose(window_days: int) -> str:
        for scope in ((window_days, tenant.locale), (window_days, None), (None, tenant.locale), (None, None)):
            if scope in by_scope:
                return by_scope[scope]
        raise LookupError(f"tenant {tenant.slug} has no SMS template")

    return choose


def build_sms(tenant: Tenant, template: str, job: SendJob, today: dt.date) -> RenderedSms:
    """Render ``template`` for one reminder; ``days_left`` is counted from ``today`` (tenant-local)."""
    values = {
        "customer_name": job.customer_name,
        "days_left": str((job.expires_on - today).days),
        "expires_on": job.expires_on.isoformat(),
        "amount": f"{job.amount:.2f}",
        "currency": job.currency,
        "plan": job.plan,
        "org_name": tenant.name,
    }
    return render_template(template, values)
