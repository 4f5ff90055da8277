"""The HTTP API's ledger views (``services.reminder_views``) on the fakes: opaque cursors that page
through everything exactly once, filter checks, and per-day totals."""

from __future__ import annotations

import datetime as dt

import pytest

from tenant_worker.domain.model import ValidationError
from tenant_worker.domain.records import DayCount, ReminderQuery
from tenant_worker.services import reminder_views
from tenant_worker.services.reminder_views import DayTotals, count_per_day, decode_cursor, encode_cursor
from tests.fakes import FakeStorage
from tests.unit.services.conftest import TODAY, NewTenant, Sweep, due_customers


def test_a_cursor_is_opaque_and_gives_back_its_id() -> None:
    cursor = encode_cursor(123456789)
    assert "123456789" not in cursor
    assert decode_cursor(cursor) == 123456789


@pytest.mark.parametrize("cursor", ["", "abc", encode_cursor(5)[:-1] + "!", "cjE6LTE"])
def test_a_cursor_the_api_never_made_is_refused_with_a_clear_reason(cursor: str) -> None:
    with pytest.raises(ValidationError, match="cursor is not one this API returned"):
        decode_cursor(cursor)


def test_pages_cover_every_reminder_once_and_the_last_has_no_next(
    storage: FakeStorage, new_tenant: NewTenant, swept: Sweep
) -> None:
    tenant = new_tenant()
    storage.add_customers(tenant, due_customers(7, days_left=3))
    ids = swept(tenant)
    seen, cursor, pages = [], None, 0
    while True:
        page = reminder_views.list_reminders(storage, tenant.slug, ReminderQuery(limit=3), cursor)
        seen += [row.id for row in page.items]
        pages += 1
        if page.next is None:
            break
        cursor = page.next
    assert (seen, pages) == (sorted(ids, reverse=True), 3)


def test_a_customer_filter_keeps_that_customers_reminders_and_an_unknown_one_none(
    storage: FakeStorage, new_tenant: NewTenant, swept: Sweep
) -> None:
    tenant = new_tenant()
    storage.add_customers(tenant, due_customers(3, days_left=3))
    swept(tenant)
    mine = reminder_views.list_reminders(storage, tenant.slug, ReminderQuery(), customer="c1")
    assert len(mine.items) == 1 and mine.next is None
    assert reminder_views.list_reminders(storage, tenant.slug, ReminderQuery(), customer="nobody").items == []


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        (ReminderQuery(limit=0), "limit must be from 1 to 500"),
        (ReminderQuery(limit=501), "limit must be from 1 to 500"),
        (ReminderQuery(status="lost"), "status 'lost' must be one of pending, sending"),
        (ReminderQuery(delivery_status="arrived"), "delivery_status 'arrived' must be one of scheduled, sent"),
        (ReminderQuery(since=TODAY, until=TODAY - dt.timedelta(days=1)), "is after"),
    ],
)
def test_bad_filters_are_refused(
    storage: FakeStorage, new_tenant: NewTenant, query: ReminderQuery, problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        reminder_views.list_reminders(storage, new_tenant().slug, query)


def test_counts_are_limited_to_a_quarter_at_a_time(storage: FakeStorage, new_tenant: NewTenant) -> None:
    slug = new_tenant().slug
    assert count_per_day(storage, slug, TODAY - dt.timedelta(days=91), TODAY) == []
    with pytest.raises(ValidationError, match="covers 93 days; at most 92"):
        count_per_day(storage, slug, TODAY - dt.timedelta(days=92), TODAY)


def test_day_totals_fold_statuses_and_delivery_statuses_per_day() -> None:
    yesterday = TODAY - dt.timedelta(days=1)
    counts = [
        DayCount(TODAY, "pending", None, 4),
        DayCount(yesterday, "sent", "delivered", 5),
        DayCount(yesterday, "sent", None, 2),
        DayCount(yesterday, "skipped", None, 1),
    ]
    assert reminder_views.totals_per_day(counts) == [
        DayTotals(yesterday, 8, {"sent": 7, "skipped": 1}, {"delivered": 5, "none": 3}),
        DayTotals(TODAY, 4, {"pending": 4}, {"none": 4}),
    ]
