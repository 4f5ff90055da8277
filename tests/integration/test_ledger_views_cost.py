"""The HTTP API's ledger views read about what they answer, whatever the tenant's history: proven on
real PostgreSQL plans (``EXPLAIN ANALYZE``), as ``test_dispatch_cost`` proves it for dispatching.

A tenant with 1,500 closed reminders spread over 15 claim days, next to another tenant's: a page deep
in the listing reads a page's worth of rows per partial index, and a day's counts read that day's rows.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.domain.records import ReminderQuery
from tests.conftest import add_customers, customer
from tests.integration.test_dispatch_cost import captured_statements, ledger_rows_read_by

HISTORY, DAYS, PAGE = 1500, 15, 25
FIRST_DAY = dt.date(2030, 1, 1)


def test_a_deep_page_and_one_days_counts_read_their_own_rows(sessions, make_tenant):
    # An older tenant's rows come first in id order, in flight: a plan that walks the primary key
    # backwards from the cursor (instead of the tenant's own index) reads through them and fails the
    # bound below.
    elder, tenant, neighbour = make_tenant(), make_tenant(), make_tenant()
    due = FIRST_DAY + dt.timedelta(days=DAYS + 3)
    for owner in (elder, tenant, neighbour):
        add_customers(sessions, owner, [customer(f"h{i}", due) for i in range(HISTORY)])
        with sql_unit_of_work(sessions)() as tx:
            tx.ledger(owner.id).claim_due_reminders(due - dt.timedelta(days=3), (5, 3, 1))
    with sessions.begin() as session:
        # Closed, claimed over 15 days in id order (a ledger's history), one in ten delivered.
        session.execute(
            text("""
                UPDATE reminders SET status = 'sent', local_date = :first + ((id % :days)::int),
                       delivery_status = CASE WHEN id % 10 = 0 THEN 'delivered' END
                 WHERE tenant_id = ANY(:tenants)
            """),
            {"first": FIRST_DAY, "days": DAYS, "tenants": [tenant.id, neighbour.id]},
        )
        # The older tenant's rows are in flight (published, not yet taken), as a busy ledger's are.
        session.execute(text("UPDATE reminders SET enqueued_at = now() WHERE tenant_id = :elder"), {"elder": elder.id})
        ids = session.scalars(text("SELECT id FROM reminders WHERE tenant_id = :t ORDER BY id"), {"t": tenant.id}).all()
    middle = ids[len(ids) // 2]
    # A ledger at rest: the bulk UPDATE's dead row versions vacuumed away (autovacuum's job in
    # production), so the indexes hold what a live ledger's hold, and fresh statistics.
    with sessions.kw["bind"].connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE reminders"))

    engine = sessions.kw["bind"]
    with captured_statements(engine) as statements, sql_unit_of_work(sessions)() as tx:
        ledger = tx.ledger(tenant.id)
        page = ledger.page_reminders(ReminderQuery(before_id=middle, limit=PAGE))
        sent = ledger.page_reminders(ReminderQuery(status="sent", before_id=middle, limit=PAGE))
        counts = ledger.count_by_day(FIRST_DAY + dt.timedelta(days=5), FIRST_DAY + dt.timedelta(days=5))
    assert [row.id for row in page] == [row.id for row in sent] == sorted(ids[: len(ids) // 2], reverse=True)[:PAGE]
    assert sum(count.count for count in counts) == HISTORY // DAYS
    for statement, read in ledger_rows_read_by(engine, statements):
        assert read <= 4 * PAGE + 2 * (HISTORY // DAYS), f"{read} ledger rows read by: {statement}"
