"""Finishing a batch costs the same whatever the tenant's backlog: every statement of a send task with
its continuation reads about a batch's worth of ledger rows, proven on real PostgreSQL plans.

Statistics are taken *before* a new tenant's first sweep inserts its backlog, with only an older
tenant's sent reminders in the ledger: the state a large tenant's first batches meet in production (a
sweep's new rows are a small share of a big table, so auto-analyze does not run). The planner believes
the new tenant has no reminders at all, so any plan that walks the tenant's rows looks cheap.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from sqlalchemy import event, text

from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.domain.ports import NoAlerts
from tenant_worker.services.sending import send_reminders
from tenant_worker.services.sweep import sweep_tenant
from tenant_worker.services.tenants import local_today
from tests.conftest import RecordingGateway, RecordingQueue, add_customers, customer

BACKLOG, BATCH, MAX_BATCHES = 3000, 25, 2


def ledger_rows_read(plan: dict[str, Any]) -> Iterator[int]:
    """Rows every node of a JSON plan produced or filtered out of the reminders table and its indexes."""
    if plan.get("Relation Name") == "reminders" or str(plan.get("Index Name", "")).startswith("reminders_"):
        loops = plan.get("Actual Loops", 1)
        yield plan.get("Actual Rows", 0) * loops + plan.get("Rows Removed by Filter", 0)
    for child in plan.get("Plans", []):
        yield from ledger_rows_read(child)


def test_a_send_task_and_its_continuation_read_a_batch_not_the_backlog(sessions, settings, make_tenant):
    config = replace(settings, send_batch_size=BATCH, max_batches_per_tenant=MAX_BATCHES)
    older, tenant = make_tenant(), make_tenant()
    due = local_today(tenant.timezone) + dt.timedelta(days=3)
    add_customers(sessions, older, [customer(f"o{i}", due) for i in range(BACKLOG)])
    sweep_tenant(sql_unit_of_work(sessions), older.slug, RecordingQueue(), config, due - dt.timedelta(days=3))
    with sessions.begin() as session:
        session.execute(text("UPDATE reminders SET status = 'sent' WHERE tenant_id = :t"), {"t": older.id})
        session.execute(text("ANALYZE reminders"))
    add_customers(sessions, tenant, [customer(f"c{i}", due) for i in range(BACKLOG)])
    queue = RecordingQueue()
    report = sweep_tenant(sql_unit_of_work(sessions), tenant.slug, queue, config, due - dt.timedelta(days=3))
    assert (report.claimed, report.backlog) == (BACKLOG, BACKLOG - BATCH * MAX_BATCHES)

    engine = sessions.kw["bind"]
    with captured_statements(engine) as statements, ThreadPoolExecutor(4) as executor:
        batch = queue.batches[0][1]
        sent = send_reminders(
            sql_unit_of_work(sessions), tenant.id, batch, RecordingGateway(), executor, config, NoAlerts(), top_up=True
        )
    assert sent.sent == BATCH and len(sent.next_ids) == BATCH

    assert len(statements) >= 4  # claim the batch, record outcomes, count in flight, stamp the next
    for statement, read in ledger_rows_read_by(engine, statements):
        assert read <= 8 * BATCH, f"{read} ledger rows read by: {statement}"

    # The ledger listing, newest first, reads about what it shows, whatever the tenant's size.
    with captured_statements(engine) as statements, sql_unit_of_work(sessions)() as tx:
        repo = tx.ledger(tenant.id)
        newest = repo.list_reminders(limit=5)
        sent_only = repo.list_reminders("sent", limit=1000)
    with sessions() as session:
        every_id = session.scalars(text("SELECT id FROM reminders WHERE tenant_id = :t"), {"t": tenant.id}).all()
    assert [row.id for row in newest] == sorted(every_id, reverse=True)[:5]
    assert [row.id for row in sent_only] == sorted(queue.batches[0][1], reverse=True)
    assert {row.status for row in sent_only} == {"sent"}
    for statement, read in ledger_rows_read_by(engine, statements):
        assert read <= 8 * BATCH, f"{read} ledger rows read by: {statement}"


@contextlib.contextmanager
def captured_statements(engine: Any) -> Iterator[list[tuple[str, Any]]]:
    """Every statement on the ledger that runs inside the block, with its parameters."""
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if "reminders" in statement and not statement.startswith("EXPLAIN"):
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def ledger_rows_read_by(engine: Any, statements: list[tuple[str, Any]]) -> Iterator[tuple[str, int]]:
    """Each statement run again under ``EXPLAIN ANALYZE`` (and rolled back), with the ledger rows it read."""
    raw = engine.raw_connection()
    try:
        for statement, parameters in statements:
            cursor = raw.cursor()
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
            plan = cursor.fetchone()[0][0]["Plan"]
            raw.rollback()  # EXPLAIN ANALYZE ran an UPDATE for real: undo it
            yield statement, sum(ledger_rows_read(plan))
    finally:
        raw.close()
