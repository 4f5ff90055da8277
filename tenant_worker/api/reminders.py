"""Tenant routes for the reminder ledger: what was claimed, sent and delivered, filtered and paginated,
and how many per day by status and delivery status (``services.reminder_views``).

Pages are newest first; ``next`` is an opaque cursor for the page after (``null`` on the last one).
A page costs its own rows however far a client pages, and rows added meanwhile never shift it.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from tenant_worker.api.deps import TenantScope, services_of, tenant_scope
from tenant_worker.bootstrap import Services
from tenant_worker.domain.records import ReminderQuery, ReminderView
from tenant_worker.services import reminder_views
from tenant_worker.services.reminder_views import DEFAULT_PAGE, MAX_PAGE

router = APIRouter(prefix="/v1/tenants/{slug}/reminders", tags=["tenant: reminders"])
ScopeDep = Annotated[TenantScope, Depends(tenant_scope)]
ServicesDep = Annotated[Services, Depends(services_of)]


class ReminderOut(BaseModel):
    """One reminder: its window of one subscription's expiry, where it stands, and what the
    operator's network last reported (``delivery_status`` null: no report yet)."""

    id: int
    subscription_id: int
    expires_on: dt.date
    window_days: int
    local_date: dt.date = Field(description="the tenant-local day it was claimed")
    status: str = Field(description="pending, sending, sent, failed, skipped or unknown")
    skip_reason: str | None
    body: str | None = Field(description="the SMS as sent")
    encoding: str | None
    segments: int | None
    attempts: int
    last_error: str | None
    sent_at: dt.datetime | None
    delivery_status: str | None = Field(description="buffered, delivered, delivery_failed, expired, ...")
    delivery_status_at: dt.datetime | None
    delivery_reason: str | None
    delivery_error_code: int | None
    created_at: dt.datetime | None
    updated_at: dt.datetime | None


class ReminderPageOut(BaseModel):
    """One page, and the cursor of the next (``null``: this is the last)."""

    items: list[ReminderOut]
    next: str | None


class DayOut(BaseModel):
    """One day's reminders by status, and by delivery status (``none``: no report yet)."""

    date: dt.date
    total: int
    by_status: dict[str, int]
    by_delivery_status: dict[str, int]


class CountsOut(BaseModel):
    """Per-day counts over a range; days without reminders are left out."""

    days: list[DayOut]


def _out(row: ReminderView) -> ReminderOut:
    return ReminderOut(**{name: getattr(row, name) for name in ReminderOut.model_fields})


@router.get("", summary="List reminders, newest first, with filters and cursor pagination")
def list_reminders(
    scope: ScopeDep,
    services: ServicesDep,
    status: Annotated[str | None, Query(description="pending, sending, sent, failed, skipped, unknown")] = None,
    delivery_status: Annotated[str | None, Query(description="e.g. delivered; `none`: no report yet")] = None,
    since: Annotated[dt.date | None, Query(alias="from", description="first local day (inclusive)")] = None,
    until: Annotated[dt.date | None, Query(alias="to", description="last local day (inclusive)")] = None,
    customer: Annotated[str | None, Query(description="a customer's external_ref")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(description="`next` of the previous page")] = None,
) -> ReminderPageOut:
    """Filters combine (AND); an unknown customer gives an empty list."""
    query = ReminderQuery(status, delivery_status, since, until, limit=limit)
    page = reminder_views.list_reminders(services.uow, scope.slug, query, cursor, customer)
    return ReminderPageOut(items=[_out(row) for row in page.items], next=page.next)


@router.get("/counts", summary="Reminders per day by status and delivery status")
def count_reminders(
    scope: ScopeDep,
    services: ServicesDep,
    since: Annotated[dt.date, Query(alias="from", description="first local day (inclusive)")],
    until: Annotated[dt.date, Query(alias="to", description="last local day (inclusive)")],
) -> CountsOut:
    """Days are tenant-local claim days; at most 92 days per request."""
    days = reminder_views.count_per_day(services.uow, scope.slug, since, until)
    return CountsOut(
        days=[DayOut(date=d.local_date, total=d.total, by_status=d.by_status, by_delivery_status=d.by_delivery_status)
              for d in days]
    )  # fmt: skip
