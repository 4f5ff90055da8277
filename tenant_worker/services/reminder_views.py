"""What a tenant's own screens show of its ledger (the HTTP API): a filtered, paginated listing of its
reminders and how many there were per day, by status and delivery status.

Pagination is by keyset, never by offset: the cursor is the last id of the page, made opaque so clients
pass it back untouched and the form can change later. A page then costs its own rows however deep the
client reads (``adapters.ledger_views``), and rows claimed while a client pages do not shift the pages
it has not read yet (new rows have higher ids and appear only on a fresh first page).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from tenant_worker.domain.delivery import DELIVERY_RANK
from tenant_worker.domain.model import ReminderStatus, ValidationError
from tenant_worker.domain.records import NO_DELIVERY_STATUS, DayCount, ReminderQuery, ReminderView
from tenant_worker.domain.storage import UnitOfWorkFactory

MAX_PAGE = 500
DEFAULT_PAGE = 100
# The longest range of days one counts request may cover: a quarter, what a dashboard's chart shows.
MAX_COUNT_DAYS = 92
_CURSOR_PREFIX = "r1:"


@dataclass(frozen=True)
class ReminderPage:
    """One page of the listing and the cursor of the next (None: this was the last page)."""

    items: list[ReminderView]
    next: str | None


@dataclass
class DayTotals:
    """One day's reminders counted by status, and by delivery status (``none``: no report yet)."""

    local_date: dt.date
    total: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_delivery_status: dict[str, int] = field(default_factory=dict)


def encode_cursor(last_id: int) -> str:
    """The opaque cursor of the page after the row ``last_id``."""
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The id a cursor continues below, or a :class:`ValidationError` for one this service never made."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if text.startswith(_CURSOR_PREFIX) and text[len(_CURSOR_PREFIX) :].isdigit():
            return int(text[len(_CURSOR_PREFIX) :])
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise ValidationError(["cursor is not one this API returned: pass the `next` value of the previous page as is"])


def _check_filters(query: ReminderQuery) -> list[str]:
    problems = []
    if not 1 <= query.limit <= MAX_PAGE:
        problems.append(f"limit must be from 1 to {MAX_PAGE}")
    if query.status is not None and query.status not in set(ReminderStatus):
        problems.append(f"status {query.status!r} must be one of {', '.join(ReminderStatus)}")
    delivery = query.delivery_status
    if delivery is not None and delivery != NO_DELIVERY_STATUS and delivery not in DELIVERY_RANK:
        known = ", ".join([*DELIVERY_RANK, NO_DELIVERY_STATUS])
        problems.append(f"delivery_status {delivery[:40]!r} must be one of {known}")
    if query.since and query.until and query.since > query.until:
        problems.append(f"from {query.since} is after to {query.until}")
    return problems


def list_reminders(
    uow: UnitOfWorkFactory, slug: str, query: ReminderQuery, cursor: str | None = None, customer: str | None = None
) -> ReminderPage:
    """A page of the tenant's reminders matching ``query``, newest first, after ``cursor``;
    ``customer`` (an ``external_ref``) keeps that customer's only (none if unknown)."""
    problems = _check_filters(query)
    if problems:
        raise ValidationError(problems)
    if cursor is not None:
        query = replace(query, before_id=decode_cursor(cursor))
    # One more row than asked says whether another page follows, without a second query.
    query = replace(query, limit=query.limit + 1)
    with uow() as tx:
        tenant = tx.catalog.find_tenant(slug)
        if customer is not None:
            found = tx.catalog.find_customer(tenant.id, customer)
            query = replace(query, subscription_ids=tuple(found.subscription_ids) if found else ())
        rows = tx.ledger(tenant.id).page_reminders(query)
    items = rows[: query.limit - 1]
    return ReminderPage(items, encode_cursor(items[-1].id) if len(rows) > len(items) else None)


def count_per_day(uow: UnitOfWorkFactory, slug: str, since: dt.date, until: dt.date) -> list[DayTotals]:
    """The tenant's reminders of each day from ``since`` to ``until`` (tenant-local, inclusive) by
    status and delivery status; days without reminders are left out."""
    if since > until:
        raise ValidationError([f"from {since} is after to {until}"])
    if (until - since).days >= MAX_COUNT_DAYS:
        raise ValidationError([f"the range covers {(until - since).days + 1} days; at most {MAX_COUNT_DAYS} at a time"])
    with uow() as tx:
        tenant = tx.catalog.find_tenant(slug)
        counts = tx.ledger(tenant.id).count_by_day(since, until)
    return totals_per_day(counts)


def totals_per_day(counts: Sequence[DayCount]) -> list[DayTotals]:
    """Fold (day, status, delivery status) counts into one :class:`DayTotals` per day, by date."""
    days: dict[dt.date, DayTotals] = {}
    for count in counts:
        day = days.setdefault(count.local_date, DayTotals(count.local_date))
        day.total += count.count
        day.by_status[count.status] = day.by_status.get(count.status, 0) + count.count
        delivery = count.delivery_status or "none"
        day.by_delivery_status[delivery] = day.by_delivery_status.get(delivery, 0) + count.count
    return [days[day] for day in sorted(days)]
