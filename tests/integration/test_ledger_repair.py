"""The recovery tick's ledger statements (adapters/ledger_repair.py) on a real PostgreSQL: what a stale
``sending`` row becomes, that a live claim and the repair never both win a row, and that each statement
reads about the rows it repairs or returns, never the ledger.

The statements act on every tenant, so this module has a database of its own: nothing here touches
another test's rows, and the rows counted are exactly the ones made here.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from tenant_worker.adapters.db import session_factory
from tenant_worker.adapters.ledger_admin import SqlLedger
from tenant_worker.adapters.ledger_repair import SqlLedgerMaintenance
from tenant_worker.adapters.orm import ReminderRow, TenantRow
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.config import Settings
from tenant_worker.constants import DEFAULT_SHARD_COUNT
from tenant_worker.domain.model import ReminderStatus, TenantSpec
from tenant_worker.services import dispatch
from tenant_worker.services.sweep import sweep_tenant
from tenant_worker.services.tenants import create_tenant, local_today
from tests.conftest import ALWAYS_OPEN, RecordingQueue, add_customers, customer, own_database, unique_slug, wait_until
from tests.integration.test_dispatch_cost import captured_statements, ledger_rows_read

MAX_ATTEMPTS = 4


@pytest.fixture(scope="module")
def ledger() -> Iterator[sessionmaker[Session]]:
    """Sessions on this module's own database."""
    with own_database("tw_repair") as url:
        yield session_factory(url)


def new_tenant(sessions: sessionmaker[Session]) -> TenantRow:
    spec = TenantSpec(
        unique_slug("rep"), "Acme Fiber", "Europe/Amsterdam", "AcmeFiber", "en", (3,), sending_window=ALWAYS_OPEN
    )
    with sql_unit_of_work(sessions)() as tx:
        return create_tenant(tx, spec, shard_count=DEFAULT_SHARD_COUNT)


def swept(sessions: sessionmaker[Session], settings: Settings, count: int) -> tuple[TenantRow, list[int]]:
    """A tenant with ``count`` reminders due today, swept: all pending and published."""
    tenant = new_tenant(sessions)
    due = local_today(tenant.timezone) + dt.timedelta(days=3)
    add_customers(sessions, tenant, [customer(f"c{i}", due) for i in range(count)])
    queue = RecordingQueue()
    sweep_tenant(sql_unit_of_work(sessions), tenant.slug, queue, settings)
    assert len(queue.ids) == count
    return tenant, sorted(queue.ids)


def claim(sessions: sessionmaker[Session], tenant: TenantRow, ids: list[int]) -> dt.datetime:
    """What a send task does first: ``pending -> sending``; returns the claim's token."""
    with sessions.begin() as session:
        jobs = SqlLedger(session, tenant.id).start_sending(ids)
    assert sorted(job.reminder_id for job in jobs) == sorted(ids)
    claimed_at = jobs[0].claimed_at
    assert claimed_at is not None
    return claimed_at


def mark(sessions: sessionmaker[Session], tenant: TenantRow, ids: list[int], claimed_at: dt.datetime) -> set[int]:
    with sessions.begin() as session:
        return SqlLedger(session, tenant.id).mark_started(ids, claimed_at)


def repair(
    sessions: sessionmaker[Session], before: dt.datetime, tenant: TenantRow | None = None, limit: int = 10_000
) -> dict[int, str]:
    """Run the repair; the rows it settled (of ``tenant`` only, if given) and what they became."""
    with sessions.begin() as session:
        rows = SqlLedgerMaintenance(session).repair_stale_sending(before, MAX_ATTEMPTS, limit)
    return {row.reminder_id: row.status for row in rows if tenant is None or row.tenant_id == tenant.id}


def ledger_of(sessions: sessionmaker[Session], tenant: TenantRow) -> dict[int, ReminderRow]:
    with sessions() as session:
        rows = session.scalars(select(ReminderRow).where(ReminderRow.tenant_id == tenant.id)).all()
    return {row.id: row for row in rows}


def between(earlier: dt.datetime, later: dt.datetime) -> dt.datetime:
    assert later > earlier
    return earlier + (later - earlier) / 2


def test_stale_sending_rows_go_back_to_pending_unless_their_request_started_or_they_ran_out_of_attempts(
    ledger, settings
):
    tenant, ids = swept(ledger, settings, 8)
    started, worn_out, worn_out_started, never_started, fresh, waiting = (
        ids[0:2], ids[2], ids[3], ids[4:6], ids[6], ids[7]
    )  # fmt: skip
    with ledger.begin() as session:
        # Lost their worker MAX_ATTEMPTS - 1 times already: this claim is the last allowed.
        session.execute(
            text("UPDATE reminders SET attempts = :n WHERE id = ANY(:ids)"),
            {"n": MAX_ATTEMPTS - 1, "ids": [worn_out, worn_out_started]},
        )
    claimed_at = claim(ledger, tenant, ids[:6])
    assert mark(ledger, tenant, [*started, worn_out_started], claimed_at) == {*started, worn_out_started}
    fresh_claim = claim(ledger, tenant, [fresh])
    before = ledger_of(ledger, tenant)

    repaired = repair(ledger, between(claimed_at, fresh_claim), tenant)

    assert repaired == {
        started[0]: "unknown",
        started[1]: "unknown",
        worn_out: "failed",
        worn_out_started: "unknown",
        never_started[0]: "pending",
        never_started[1]: "pending",
    }
    after = ledger_of(ledger, tenant)
    for reminder_id in never_started:
        row = after[reminder_id]
        assert (row.enqueued_at, row.send_started_at) == (None, None)  # unpublished: the next top-up sends it
        assert row.last_error == "worker lost before sending; sending again"
    for reminder_id in [*started, worn_out_started]:
        assert after[reminder_id].enqueued_at == before[reminder_id].enqueued_at
        assert after[reminder_id].last_error == "worker lost while sending: it may have been delivered"
    assert after[worn_out].last_error == f"worker lost before sending, {MAX_ATTEMPTS} times"
    assert all(after[i].updated_at > before[i].updated_at for i in repaired)
    # The fresh claim and the row still waiting for its task are not the repair's business.
    for untouched in (fresh, waiting):
        assert (after[untouched].status, after[untouched].updated_at, after[untouched].enqueued_at) == (
            before[untouched].status,
            before[untouched].updated_at,
            before[untouched].enqueued_at,
        )
    assert after[fresh].status == "sending" and after[waiting].status == "pending"
    # Settled rows are settled: a second tick finds nothing of this tenant.
    assert repair(ledger, between(claimed_at, fresh_claim), tenant) == {}


def test_the_repair_settles_the_oldest_claims_first_and_at_most_its_limit(ledger, settings):
    tenant, ids = swept(ledger, settings, 6)
    claims = [claim(ledger, tenant, [reminder_id]) for reminder_id in reversed(ids)]
    repair(ledger, claims[0])  # whatever earlier tests left sending, claimed before these
    cutoff = claims[-1] + dt.timedelta(microseconds=1)
    assert set(repair(ledger, cutoff, tenant, limit=4)) == set(ids[2:])
    assert set(repair(ledger, cutoff, tenant, limit=4)) == set(ids[:2])


def test_a_tenant_whose_every_batch_died_drains_again_after_the_repair(ledger, settings):
    config = replace(settings, send_batch_size=2, max_batches_per_tenant=2)
    tenant = new_tenant(ledger)
    due = local_today(tenant.timezone) + dt.timedelta(days=3)
    add_customers(ledger, tenant, [customer(f"c{i}", due) for i in range(10)])
    queue = RecordingQueue()
    sweep_tenant(sql_unit_of_work(ledger), tenant.slug, queue, config)
    assert [len(batch) for _, batch in queue.batches] == [2, 2]
    # Both batches' workers were killed after the claim, before any request started.
    claims = [claim(ledger, tenant, batch) for _, batch in queue.batches]
    assert dispatch.publish_next_batches(sql_unit_of_work(ledger), tenant.id, RecordingQueue(), config).published == []

    repaired = repair(ledger, claims[-1] + dt.timedelta(microseconds=1), tenant)

    assert sorted(repaired) == sorted(queue.ids) and set(repaired.values()) == {"pending"}
    with ledger() as session:
        assert tenant.id in SqlLedgerMaintenance(session).tenants_with_unpublished()
    republished = dispatch.publish_next_batches(sql_unit_of_work(ledger), tenant.id, RecordingQueue(), config).published
    assert republished == sorted(queue.ids)  # the oldest first, within the bound again


def test_a_task_that_outlived_its_claim_can_neither_mark_nor_record_its_rows(ledger, settings):
    tenant, ids = swept(ledger, settings, 2)
    old_claim = claim(ledger, tenant, ids)
    assert set(repair(ledger, old_claim + dt.timedelta(microseconds=1), tenant)) == set(ids)
    new_claim = claim(ledger, tenant, ids[:1])  # the republished task took the first one again

    assert mark(ledger, tenant, ids, old_claim) == set()
    with ledger.begin() as session:
        SqlLedger(session, tenant.id).finish_many(
            [(i, ReminderStatus.SENT, {"provider_message_id": "stale"}) for i in ids], old_claim
        )
    rows = ledger_of(ledger, tenant)
    assert (rows[ids[0]].status, rows[ids[1]].status) == ("sending", "pending")
    assert rows[ids[0]].provider_message_id is None and rows[ids[0]].send_started_at is None

    assert mark(ledger, tenant, ids, new_claim) == {ids[0]}
    with ledger.begin() as session:
        SqlLedger(session, tenant.id).finish_many(
            [(ids[0], ReminderStatus.SENT, {"provider_message_id": "mb-1"})], new_claim
        )
    assert ledger_of(ledger, tenant)[ids[0]].status == "sent"


def lock_waits(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(
            session.execute(
                text("""
                    SELECT count(*) FROM pg_stat_activity
                     WHERE datname = current_database() AND wait_event_type = 'Lock'
                """)
            ).scalar_one()
        )


def run_blocked(sessions: sessionmaker[Session], call: Callable[[], Any]) -> Any:
    """Start ``call`` in a thread and return its future once it waits for a row lock."""
    executor = ThreadPoolExecutor(1)
    future = executor.submit(call)
    wait_until(lambda: lock_waits(sessions) or future.done(), 10, "the second statement to wait for the row locks")
    assert not future.done(), "the second statement did not wait for the first one's row locks"
    executor.shutdown(wait=False)
    return future


def test_a_request_marked_started_first_makes_the_waiting_repair_mark_it_unknown(ledger, settings):
    tenant, ids = swept(ledger, settings, 3)
    claimed_at = claim(ledger, tenant, ids)
    with ledger.begin() as session:
        assert SqlLedger(session, tenant.id).mark_started(ids, claimed_at) == set(ids)
        repairing = run_blocked(ledger, lambda: repair(ledger, claimed_at + dt.timedelta(microseconds=1), tenant))
    # The repair re-read the rows after the mark committed: they may have gone out, so not pending.
    assert repairing.result(10) == dict.fromkeys(ids, "unknown")


def test_a_repair_first_makes_the_waiting_mark_find_nothing_so_nothing_is_sent(ledger, settings):
    tenant, ids = swept(ledger, settings, 3)
    claimed_at = claim(ledger, tenant, ids)
    with ledger.begin() as session:
        rows = SqlLedgerMaintenance(session).repair_stale_sending(
            claimed_at + dt.timedelta(microseconds=1), MAX_ATTEMPTS, 100
        )
        assert {row.reminder_id: row.status for row in rows if row.tenant_id == tenant.id} == dict.fromkeys(
            ids, "pending"
        )
        marking = run_blocked(ledger, lambda: mark(ledger, tenant, ids, claimed_at))
    assert marking.result(10) == set()
    assert {(row.status, row.send_started_at) for row in ledger_of(ledger, tenant).values()} == {("pending", None)}


def race(ledger: sessionmaker[Session], tenant: TenantRow, group: list[int]) -> tuple[set[int], dict[int, str]]:
    """A task marking its claimed rows started while the tick repairs them, both released at once."""
    claimed_at = claim(ledger, tenant, group)
    barrier = threading.Barrier(2)

    def marker() -> set[int]:
        barrier.wait()
        return mark(ledger, tenant, group, claimed_at)

    def repairer() -> dict[int, str]:
        barrier.wait()
        return repair(ledger, claimed_at + dt.timedelta(microseconds=1), tenant)

    with ThreadPoolExecutor(2) as pool:
        marked, repaired = pool.submit(marker), pool.submit(repairer)
    return marked.result(), repaired.result()


def test_racing_marks_and_repairs_never_both_win_a_row(ledger, settings):
    tenant, ids = swept(ledger, settings, 40)
    for start in range(0, len(ids), 4):
        group = ids[start : start + 4]
        marked, repaired = race(ledger, tenant, group)
        for reminder_id in group:
            # A task sends exactly the rows it marked; such a row must never be put back to pending.
            if reminder_id in marked:
                assert repaired.get(reminder_id) in (None, "unknown")
            else:
                assert repaired.get(reminder_id) == "pending"
    rows = ledger_of(ledger, tenant).values()
    assert all((row.status == "unknown") == (row.send_started_at is not None) for row in rows)


def explain(session: Session, statement: str, parameters: Any) -> dict[str, Any]:
    """The JSON plan of ``statement`` run under EXPLAIN (ANALYZE, BUFFERS), then rolled back."""
    cursor = session.connection().connection.cursor()
    cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters)
    plan: dict[str, Any] = cursor.fetchone()[0][0]["Plan"]
    session.rollback()
    return plan


def buffers(plan: dict[str, Any]) -> int:
    return int(plan.get("Shared Hit Blocks", 0)) + int(plan.get("Shared Read Blocks", 0))


def reads_of(sessions: sessionmaker[Session], call: Callable[[Session], Any]) -> tuple[Any, int, int]:
    """Run ``call`` and roll it back; its result, and the ledger rows and buffers its statement read
    when run again under EXPLAIN ANALYZE (and rolled back too), so the ledger is left as it was."""
    engine = sessions.kw["bind"]
    with sessions() as session:
        with captured_statements(engine) as statements:
            result = call(session)
        session.rollback()
        [(statement, parameters)] = statements
        plan = explain(session, statement, parameters)
    return result, sum(ledger_rows_read(plan)), buffers(plan)


@pytest.mark.parametrize("statistics", ["current", "taken-before-the-rows-arrived"])
def test_the_tick_reads_what_it_repairs_or_returns_not_the_ledger(ledger, settings, statistics):
    # Settle every earlier test's rows first: from here on, this test knows every row of the ledger.
    repair(ledger, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
    with ledger.begin() as session:
        session.execute(text("UPDATE reminders SET status = 'sent' WHERE status IN ('pending', 'sending')"))
    big = new_tenant(ledger)
    add_customers(ledger, big, [customer("big", local_today(big.timezone) + dt.timedelta(days=3))])
    others = [new_tenant(ledger) for _ in range(5)]
    for other in others:
        add_customers(ledger, other, [customer("o", local_today(other.timezone) + dt.timedelta(days=3))])
    hour_ago = "now() - interval '1 hour'"
    # (tenant, how many, status, updated_at, enqueued_at, send_started_at)
    shape = [
        (big, 14_000, "sent", "now()", hour_ago, hour_ago),
        (big, 2_000, "sending", "now()", "now()", "now()"),  # in flight: live tasks hold them
        (big, 20, "sending", hour_ago, hour_ago, "NULL"),  # their worker died before any request
        (big, 10, "sending", hour_ago, hour_ago, hour_ago),  # ... and after requests started
        (big, 2_000, "pending", "now()", "now()", "NULL"),  # published, a task is queued
        (big, 25, "pending", hour_ago, hour_ago, "NULL"),  # published an hour ago: the task is lost
        (big, 1_900, "pending", "now()", "NULL", "NULL"),  # the backlog, waiting for a task
        *[(other, 500, "pending", "now()", "NULL", "NULL") for other in others],
    ]
    if statistics != "current":
        # As after a crash in production: the planner has not seen the stale rows (nor the backlog).
        with ledger.begin() as session:
            session.execute(text("ANALYZE reminders"))
    day = 0
    with ledger.begin() as session:
        for tenant, count, status, updated_at, enqueued_at, started_at in shape:
            session.execute(
                text(f"""
                    INSERT INTO reminders (tenant_id, subscription_id, expires_on, window_days, local_date, status,
                                           attempts, updated_at, enqueued_at, send_started_at)
                    SELECT :tenant_id, s.id, DATE '2000-01-01' + :day + g, 3, DATE '2000-01-01' + :day + g,
                           :status, 1, {updated_at}, {enqueued_at}, {started_at}
                      FROM generate_series(1, :count) AS g, subscriptions s WHERE s.tenant_id = :tenant_id
                """),
                {"tenant_id": tenant.id, "count": count, "status": status, "day": day},
            )
            day += count
    with ledger.begin() as session:
        if statistics == "current":
            session.execute(text("ANALYZE reminders"))
        ledger_size, pages = session.execute(
            text("SELECT count(*), pg_relation_size('reminders') / current_setting('block_size')::int FROM reminders")
        ).one()
    assert ledger_size >= sum(count for _, count, *_ in shape)
    now = dt.datetime.now(dt.UTC)
    stale_before = now - dt.timedelta(seconds=settings.stale_sending_seconds)

    repaired, read, touched = reads_of(
        ledger, lambda s: SqlLedgerMaintenance(s).repair_stale_sending(stale_before, MAX_ATTEMPTS, 5000)
    )
    assert len(repaired) == 30
    assert read <= 8 * len(repaired) + 10, f"the repair of {len(repaired)} rows read {read} ledger rows"

    lost, read, touched = reads_of(
        ledger, lambda s: SqlLedgerMaintenance(s).tenants_with_lost_tasks(dispatch.published_before(settings, now))
    )
    assert lost == [big.id]
    assert read <= 4 * 25 + 10, f"finding the tasks lost of 25 rows read {read} ledger rows"
    assert touched < pages / 4, f"{touched} buffers of a {pages}-page ledger"

    waiting, read, touched = reads_of(ledger, lambda s: SqlLedgerMaintenance(s).tenants_with_unpublished())
    assert sorted(waiting) == sorted([big.id, *(other.id for other in others)])
    assert read <= 3 * len(waiting) + 5, f"finding {len(waiting)} tenants with a backlog read {read} ledger rows"
    assert touched < pages / 4, f"{touched} buffers of a {pages}-page ledger"

    # And for real: the 20 never started go back to pending, the 10 started become unknown.
    settled = repair(ledger, stale_before)
    assert sorted(settled.values()) == ["pending"] * 20 + ["unknown"] * 10


def test_a_reminder_reopened_twice_names_the_operator_once_before_its_last_error(ledger, settings_fixture):
    tenant, [reminder] = swept(ledger, settings_fixture, 1)
    for error in ("MessageBird refused the message: code 9", "gave up after 4 attempts: HTTP 500"):
        with ledger.begin() as session:
            session.execute(
                text("UPDATE reminders SET status = 'failed', last_error = :e WHERE id = :id"),
                {"e": error, "id": reminder},
            )
        with ledger.begin() as session:
            assert SqlLedger(session, tenant.id).reopen("failed", None) == [reminder]
        with ledger() as session:
            assert session.get(ReminderRow, reminder).last_error == f"sent again by an operator after: {error}"
    with ledger.begin() as session:
        session.execute(text("UPDATE reminders SET status = 'failed' WHERE id = :id"), {"id": reminder})
    with ledger.begin() as session:
        SqlLedger(session, tenant.id).reopen("failed", None)
    with ledger() as session:
        assert session.get(ReminderRow, reminder).last_error.count("sent again by an operator") == 1
