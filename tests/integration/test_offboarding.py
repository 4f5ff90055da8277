"""Offboarding a tenant while its SMS are being sent, on a real worker, Redis, PostgreSQL and emulator:
the sends in flight finish and are recorded, nothing starts afterwards, the rest is cancelled visibly."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from tenant_worker import constants
from tenant_worker.adapters.celery_publisher import CeleryReminderQueue
from tenant_worker.adapters.orm import ReminderRow
from tenant_worker.adapters.redbeat import RedBeatStore
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.celery_app import create_app
from tenant_worker.services.onboarding import offboard
from tenant_worker.services.sweep import sweep_tenant
from tenant_worker.services.tenants import local_today
from tenant_worker_dev.emulators.messagebird import MessageBirdEmulator
from tests.conftest import (
    ACCESS_KEY,
    add_customers,
    customer,
    new_phone,
    put_on_queue,
    redis_db_url,
    wait_for_idle_worker,
    wait_until,
)

DUE, BATCH, MAX_BATCHES, LATENCY = 60, 10, 2, 1.0


def statuses(sessions, tenant_id: int) -> dict[tuple[str, str | None], int]:
    with sessions() as session:
        rows = session.execute(
            select(ReminderRow.status, ReminderRow.skip_reason, func.count())
            .where(ReminderRow.tenant_id == tenant_id)
            .group_by(ReminderRow.status, ReminderRow.skip_reason)
        ).all()
    return {(status, reason): count for status, reason, count in rows}


def test_offboarding_lets_sends_in_flight_finish_and_starts_no_more(sessions, make_tenant, redis_url, start_worker):
    tenant = make_tenant()
    tenant = put_on_queue(sessions, tenant, constants.shard_queue(13))
    phones = {new_phone() for _ in range(DUE)}
    due = local_today(tenant.timezone) + dt.timedelta(days=2)
    add_customers(sessions, tenant, [customer(f"c{i}", due, phone) for i, phone in enumerate(sorted(phones))])
    digits = {phone.lstrip("+") for phone in phones}

    with MessageBirdEmulator(access_key=ACCESS_KEY, latency=LATENCY) as slow:

        def accepted() -> int:
            return sum(1 for record in slow.accepted() if set(record.recipients) & digits)

        worker = start_worker(
            "--shards", "13", REDIS_URL=redis_db_url(redis_url, 10), MESSAGEBIRD_ENDPOINT=slow.url,
            SEND_BATCH_SIZE=str(BATCH), MAX_BATCHES_PER_TENANT=str(MAX_BATCHES), MESSAGEBIRD_READ_TIMEOUT="10",
        )  # fmt: skip
        app = create_app(worker.settings)
        sweep_tenant(
            sql_unit_of_work(sessions),
            tenant.slug,
            CeleryReminderQueue(app),
            worker.settings,
            due - dt.timedelta(days=2),
        )
        wait_until(lambda: statuses(sessions, tenant.id).get(("sending", None)), 30, "sends in flight")

        report = offboard(sql_unit_of_work(sessions), RedBeatStore(app), tenant.slug, drain_timeout=30)

        assert report.waited_for_sending > 0 and report.still_sending == 0
        after = statuses(sessions, tenant.id)
        sent = after.get(("sent", None), 0)
        assert 0 < sent <= BATCH * MAX_BATCHES
        assert after == {("sent", None): sent, ("skipped", "tenant_offboarded"): DUE - sent}
        assert report.cancelled_pending == DUE - sent
        assert accepted() == sent  # every SMS that went out is in the ledger, once

        # A sentinel proves the worker is past every task of the offboarded tenant: once the worker has
        # ended what it was running (so their follow-up batches are published), another tenant's SMS,
        # swept now onto the same shard queue (a Redis list, taken in order), lands behind them. When it
        # has been accepted and the worker has again ended everything it received, they have all run.
        wait_for_idle_worker(worker.log, "before the sentinel")
        sentinel, sentinel_phone = make_tenant(), new_phone()
        put_on_queue(sessions, sentinel, constants.shard_queue(13))
        add_customers(sessions, sentinel, [customer("sentinel", due, sentinel_phone)])
        sweep_tenant(
            sql_unit_of_work(sessions),
            sentinel.slug,
            CeleryReminderQueue(app),
            worker.settings,
            due - dt.timedelta(days=2),
        )
        sentinel_digits = sentinel_phone.lstrip("+")
        wait_until(
            lambda: any(sentinel_digits in record.recipients for record in slow.accepted()), 30, "the sentinel SMS"
        )
        wait_for_idle_worker(worker.log, "after the sentinel")
        assert accepted() == sent  # and nothing was sent after offboarding returned
