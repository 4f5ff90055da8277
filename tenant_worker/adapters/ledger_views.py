"""The HTTP API's views of one tenant's ledger on PostgreSQL: a keyset-paginated listing and per-day counts.

The ledger holds tens of millions of rows and no index leads with ``tenant_id`` over all of them (see
migration 0004: dispatching must never be tempted to walk a tenant). So, as ``SqlLedger.list_reminders``
does, a page is the newest rows of each of the three partial indexes that split the ledger (closed,
waiting, in flight), each read backwards from the cursor and stopped at the page size, then merged:
a page costs its own rows (plus the rows the filters pass over), however deep the listing goes. A
listing for one customer goes through the ledger's unique index, which leads with ``subscription_id``.

The other filters are checked on the rows walked, not looked up: a page for a rare status or delivery
status walks back until it has its rows (bounded by a date range when one is given, which the planner
may also serve from the day index). No index on ``delivery_status``: every status report would then
rewrite index entries instead of updating its row in place (HOT).

Per-day counts read the closed rows of the days asked for through ``reminders_closed_day_idx``
(migration 0012), and the open rows (a backlog at most) through their own indexes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tenant_worker.adapters.orm import CLOSED, IN_FLIGHT, WAITING, ReminderRow
from tenant_worker.domain.records import NO_DELIVERY_STATUS, DayCount, ReminderQuery, ReminderView

# Each predicate word for word as its index has it, so the planner can prove the index applies.
_PARTS = (f"({CLOSED})", f"({WAITING})", f"({IN_FLIGHT})")
# How each part is ordered. The closed and waiting rows' indexes are (tenant_id, id): read backwards they
# give the order. The in-flight rows' index is (tenant_id, enqueued_at), so they are sorted, which costs
# little (a tenant has a few batches in flight); "id + 0" keeps the planner from getting the order by
# walking the primary key backwards instead, through every tenant's older rows (1,468 rows read for a
# page of 25 in a full test run's database).
_ORDER = ("id", "id", "id + 0")


def _filters(query: ReminderQuery) -> tuple[list[str], dict[str, Any]]:
    """The WHERE conditions (besides the tenant) and their parameters; only the filters given, so
    every statement is planned for exactly what it asks."""
    conditions: list[str] = []
    params: dict[str, Any] = {}
    if query.status is not None:
        conditions.append("status = :status")
        params["status"] = query.status
    if query.delivery_status == NO_DELIVERY_STATUS:
        conditions.append("delivery_status IS NULL")
    elif query.delivery_status is not None:
        conditions.append("delivery_status = :delivery_status")
        params["delivery_status"] = query.delivery_status
    if query.since is not None:
        conditions.append("local_date >= :since")
        params["since"] = query.since
    if query.until is not None:
        conditions.append("local_date <= :until")
        params["until"] = query.until
    if query.before_id is not None:
        conditions.append("id < :before_id")
        params["before_id"] = query.before_id
    return conditions, params


def page_reminders(session: Session, tenant_id: int, query: ReminderQuery) -> list[ReminderView]:
    """``Ledger.page_reminders`` (see the module docs)."""
    conditions, params = _filters(query)
    params.update(tenant_id=tenant_id, limit=query.limit)
    if query.limit <= 0:
        return []
    if query.subscription_ids is not None:
        if not query.subscription_ids:
            return []
        params["subscription_ids"] = list(query.subscription_ids)
        where = " AND ".join(["tenant_id = :tenant_id", "subscription_id = ANY(:subscription_ids)", *conditions])
        sql = f"SELECT id FROM reminders WHERE {where} ORDER BY id DESC LIMIT :limit"
    else:
        branches = [
            f"(SELECT id FROM reminders WHERE {' AND '.join(['tenant_id = :tenant_id', part, *conditions])}"
            f" ORDER BY {order} DESC LIMIT :limit)"
            for part, order in zip(_PARTS, _ORDER, strict=True)
        ]
        sql = f"SELECT id FROM ({' UNION ALL '.join(branches)}) AS page ORDER BY id DESC LIMIT :limit"
    ids = session.scalars(text(sql), params).all()
    if not ids:
        return []
    rows = session.scalars(select(ReminderRow).where(ReminderRow.tenant_id == tenant_id, ReminderRow.id.in_(ids)))
    return [_view(row) for row in sorted(rows, key=lambda row: row.id, reverse=True)]


def count_by_day(session: Session, tenant_id: int, since: dt.date, until: dt.date) -> list[DayCount]:
    """``Ledger.count_by_day`` (see the module docs)."""
    branches = [
        "SELECT local_date, status, delivery_status FROM reminders"
        f" WHERE tenant_id = :tenant_id AND {part} AND local_date BETWEEN :since AND :until"
        for part in _PARTS
    ]
    rows = session.execute(
        text(f"""
            SELECT local_date, status, delivery_status, count(*) AS n
              FROM ({" UNION ALL ".join(branches)}) AS days
             GROUP BY local_date, status, delivery_status
             ORDER BY local_date, status, delivery_status NULLS FIRST
        """),
        {"tenant_id": tenant_id, "since": since, "until": until},
    )
    return [DayCount(row.local_date, row.status, row.delivery_status, int(row.n)) for row in rows]


def _view(row: ReminderRow) -> ReminderView:
    return ReminderView(**{field: getattr(row, field) for field in ReminderView.__dataclass_fields__})
