"""The customer sync on real PostgreSQL: several subscriptions per customer are each reminded once per
window, and an import running while the same tenant is swept and sent never doubles or loses a send."""

from __future__ import annotations

import datetime as dt
import threading

from tenant_worker.adapters import csv_files
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.domain.model import ReminderStatus
from tenant_worker.services.customers import ImportOptions, source_rows, sync_customers
from tenant_worker.services.sweep import sweep_tenant
from tests.conftest import RecordingQueue

DAY = dt.date(2026, 6, 1)
HEADER = "external_ref,subscription_ref,name,phone,plan,amount,currency,expires_on\n"


def csv_rows(count: int, expires: dt.date, name: str = "Customer", subscriptions: tuple[str, ...] = ("",)) -> str:
    lines = [
        f"c{i},{sub},{name} {i},+3162{i:07d},Fiber,29.95,EUR,{expires}\n" for i in range(count) for sub in subscriptions
    ]
    return HEADER + "".join(lines)


def sync(uow, slug: str, text: str, **options) -> None:
    with uow() as tx:
        sync_customers(tx, slug, source_rows(csv_files.read_rows(text)), ImportOptions(**options))


def test_each_subscription_of_a_customer_is_reminded_once_per_window(sessions, settings, make_tenant):
    tenant = make_tenant()
    uow = sql_unit_of_work(sessions)
    sync(uow, tenant.slug, csv_rows(2, DAY + dt.timedelta(days=3), subscriptions=("fiber", "tv", "")))
    queue = RecordingQueue()

    sweep_tenant(uow, tenant.slug, queue, settings, DAY)
    sweep_tenant(uow, tenant.slug, queue, settings, DAY)  # the same day again: nothing new
    sweep_tenant(uow, tenant.slug, queue, settings, DAY + dt.timedelta(days=1))  # still the 3-day window

    with uow() as tx:
        rows = tx.ledger(tenant.id).list_reminders()
    assert len(queue.ids) == 6 and len(rows) == 6
    assert len({r.subscription_id for r in rows}) == 6 and {r.window_days for r in rows} == {3}


def test_an_import_during_sweeps_and_sends_never_doubles_or_loses_a_reminder(sessions, settings, make_tenant):
    tenant = make_tenant()
    uow = sql_unit_of_work(sessions)
    count, expires = 300, DAY + dt.timedelta(days=3)
    sync(uow, tenant.slug, csv_rows(count, expires, subscriptions=("a", "b")))
    sent: list[int] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def send(ids: list[int]) -> None:
        with uow() as tx:
            ledger = tx.ledger(tenant.id)
            jobs = ledger.start_sending(ids)
            if jobs:
                ledger.finish_many([(j.reminder_id, ReminderStatus.SENT, {}) for j in jobs], jobs[0].claimed_at)
        sent.extend(j.reminder_id for j in jobs)

    def importer() -> None:
        try:
            for round_ in range(6):  # renames rewrite every customer row while the ledger is busy
                sync(uow, tenant.slug, csv_rows(count, expires, f"Round{round_}", ("a", "b")), full_sync=True)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            done.set()

    def sweeper() -> None:
        try:
            while not done.is_set():
                queue = RecordingQueue()
                sweep_tenant(uow, tenant.slug, queue, settings, DAY)
                for _, batch in queue.batches:
                    send(batch)
                with uow() as tx:
                    waiting = [r.id for r in tx.ledger(tenant.id).list_reminders(status="pending")]
                send(waiting)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=importer), threading.Thread(target=sweeper)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    sweep_tenant(uow, tenant.slug, RecordingQueue(), settings, DAY)
    with uow() as tx:
        send([r.id for r in tx.ledger(tenant.id).list_reminders(status="pending")])
        rows = tx.ledger(tenant.id).list_reminders(limit=10_000)

    assert len(sent) == len(set(sent)) == 2 * count  # every subscription once, none twice
    assert {r.status for r in rows} == {"sent"} and len({r.subscription_id for r in rows}) == 2 * count
