"""Fairness inside a shard, on real Redis, PostgreSQL and a real worker.

A large tenant and several small ones share one shard queue. The large tenant is swept first and
starts draining; each small tenant is swept while it drains. The assertions count messages in the
emulator's log (arrival order), never wall-clock time: between a small tenant's sweep and its last
SMS, at most the large tenant's bounded outstanding batches may go out.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from tenant_worker import constants
from tenant_worker.adapters.celery_publisher import CeleryReminderQueue
from tenant_worker.adapters.orm import ReminderRow
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.celery_app import create_app
from tenant_worker.services.sweep import sweep_tenant
from tenant_worker.services.tenants import local_today
from tenant_worker_dev.emulators.messagebird import MessageBirdEmulator
from tests.conftest import ACCESS_KEY, add_customers, customer, new_phone, put_on_queue, redis_db_url, wait_until

BIG, SMALL_TENANTS, SMALL_DUE = 1000, 5, 3
BATCH, MAX_BATCHES, IN_FLIGHT = 10, 2, 4


def open_count(sessions, tenant_ids):
    with sessions() as session:
        return session.scalar(
            select(func.count())
            .select_from(ReminderRow)
            .where(ReminderRow.tenant_id.in_(tenant_ids), ReminderRow.status.in_(["pending", "sending"]))
        )


def test_small_tenants_are_served_while_a_large_tenant_on_the_same_shard_drains(
    sessions, make_tenant, redis_url, start_worker
):
    shard = constants.shard_queue(11)
    big = make_tenant()
    smalls = [make_tenant() for _ in range(SMALL_TENANTS)]
    for tenant in [big, *smalls]:
        tenant = put_on_queue(sessions, tenant, shard)
    due = local_today(big.timezone) + dt.timedelta(days=2)
    big_phones = {new_phone().lstrip("+") for _ in range(BIG)}
    add_customers(sessions, big, [customer(f"b{i}", due, "+" + p) for i, p in enumerate(sorted(big_phones))])
    small_phones = {}
    for tenant in smalls:
        phones = [new_phone() for _ in range(SMALL_DUE)]
        small_phones[tenant.id] = {p.lstrip("+") for p in phones}
        add_customers(sessions, tenant, [customer(f"s{i}", due, p) for i, p in enumerate(phones)])

    with MessageBirdEmulator(access_key=ACCESS_KEY, latency=0.01) as slow:
        worker = start_worker(
            "--shards", "11", "--concurrency", "2",
            REDIS_URL=redis_db_url(redis_url, 8), MESSAGEBIRD_ENDPOINT=slow.url, SEND_BATCH_SIZE=str(BATCH),
            MAX_BATCHES_PER_TENANT=str(MAX_BATCHES), MAX_IN_FLIGHT=str(IN_FLIGHT),
        )  # fmt: skip
        queue = CeleryReminderQueue(create_app(worker.settings))

        def big_sent():
            return sum(1 for r in slow.accepted() if r.recipients[0] in big_phones)

        big_report = sweep_tenant(sql_unit_of_work(sessions), big.slug, queue, worker.settings)
        assert (big_report.enqueued, big_report.backlog) == (BATCH * MAX_BATCHES, BIG - BATCH * MAX_BATCHES)
        wait_until(lambda: big_sent() >= 50, 30, "the large tenant to be draining")
        big_at_sweep = {}
        for tenant in smalls:
            big_at_sweep[tenant.id] = big_sent()
            report = sweep_tenant(sql_unit_of_work(sessions), tenant.slug, queue, worker.settings)
            assert (report.enqueued, report.backlog) == (SMALL_DUE, 0)

        wait_until(lambda: open_count(sessions, [big.id] + [t.id for t in smalls]) == 0, 60, "everything sent")
        log = [r.recipients[0] for r in slow.accepted()]

    assert len(log) == len(set(log)) == BIG + SMALL_TENANTS * SMALL_DUE
    for tenant in smalls:
        last_small = max(i for i, phone in enumerate(log) if phone in small_phones[tenant.id])
        big_before = sum(1 for phone in log[: last_small + 1] if phone in big_phones)
        # Ahead of the small batch: at most MAX_BATCHES of the big tenant's batches (queued or
        # running), plus what was already in flight when the snapshot was taken.
        assert big_before - big_at_sweep[tenant.id] <= (MAX_BATCHES + 1) * BATCH + IN_FLIGHT, (
            big_before,
            big_at_sweep[tenant.id],
        )
        assert big_before < BIG, "the small tenant should be served while the large one still drains"
