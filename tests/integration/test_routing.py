"""Routing on real Redis and real workers: tenant queues, retries that stay there, safe moves, depths.

Each test uses its own Redis database, so the session worker (which consumes every queue of
database 0) never takes its tasks.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess

import redis
from sqlalchemy import select

from tenant_worker import constants
from tenant_worker.adapters.celery_publisher import CeleryReminderQueue, announce_route_change
from tenant_worker.adapters.orm import ReminderRow, TenantRow
from tenant_worker.adapters.redis_queues import queue_depths
from tenant_worker.adapters.routes import TenantRouter, bump_routes_version
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.celery_app import create_app
from tenant_worker.config import load_settings
from tenant_worker.services.sharding import move_tenant
from tenant_worker.services.sweep import sweep_tenant
from tenant_worker.services.tenants import local_today
from tenant_worker_dev.emulators.messagebird import Fault
from tests.conftest import BIN, add_customers, customer, new_phone, put_on_queue, redis_db_url, wait_until


def ledger(sessions, tenant_id):
    with sessions() as session:
        return session.scalars(select(ReminderRow).where(ReminderRow.tenant_id == tenant_id)).all()


def settled(sessions, tenant_id, count, timeout=30):
    def done():
        rows = ledger(sessions, tenant_id)
        return rows if len(rows) == count and all(r.status not in ("pending", "sending") for r in rows) else None

    return wait_until(done, timeout, f"{count} reminders to settle")


def requests_to(emulator, phone):
    return [r for r in emulator.requests() if phone.lstrip("+") in r.recipients]


def test_send_task_is_published_to_the_tenants_shard_queue_and_nowhere_else(
    sessions, worker_env, make_tenant, redis_url
):
    url = redis_db_url(redis_url, 4)
    settings = load_settings({**worker_env, "REDIS_URL": url})
    tenant = make_tenant()
    tenant = put_on_queue(sessions, tenant, constants.shard_queue(5))
    add_customers(sessions, tenant, [customer("a", local_today(tenant.timezone) + dt.timedelta(days=3))])
    sweep_tenant(sql_unit_of_work(sessions), tenant.slug, CeleryReminderQueue(create_app(settings)), settings)
    others = [constants.shard_queue(n) for n in range(16) if n != 5]
    depths = queue_depths(redis.Redis.from_url(url), [tenant.queue, *constants.CONTROL_POOL_QUEUES, *others])
    assert depths.pop(tenant.queue) == 1
    assert set(depths.values()) == {0}


def test_retry_after_429_stays_on_the_tenants_queue_never_the_default_queue(
    sessions, make_tenant, emulator, redis_url, start_worker
):
    url = redis_db_url(redis_url, 3)
    tenant = make_tenant()
    tenant = put_on_queue(sessions, tenant, constants.dedicated_queue(tenant.slug))
    # This worker consumes the tenant's queue and nothing else: a retry published anywhere else
    # would never run and the reminder would never settle.
    worker = start_worker("--tenant", tenant.slug, REDIS_URL=url)
    assert f"{constants.DEDICATED_QUEUE_PREFIX}{tenant.slug}" in worker.text()
    phone = new_phone()
    emulator.add_faults(phone, [Fault.status(429)])
    add_customers(sessions, tenant, [customer("x", local_today(tenant.timezone) + dt.timedelta(days=1), phone)])
    sweep_tenant(
        sql_unit_of_work(sessions), tenant.slug, CeleryReminderQueue(create_app(worker.settings)), worker.settings
    )

    [row] = settled(sessions, tenant.id, 1)
    assert (row.status, row.attempts) == ("sent", 2)
    assert [r.status for r in requests_to(emulator, phone)] == [429, 201]
    assert worker.text().count("Task tenant_worker.send_reminders[") >= 2
    depths = queue_depths(redis.Redis.from_url(url), list(constants.CONTROL_POOL_QUEUES))
    assert depths == {q: 0 for q in constants.CONTROL_POOL_QUEUES}


def test_moved_tenant_sends_everything_once_even_when_the_old_queue_is_drained_later(
    sessions, make_tenant, emulator, redis_url, start_worker, worker_env
):
    url = redis_db_url(redis_url, 5)
    settings = load_settings({**worker_env, "REDIS_URL": url})
    app = create_app(settings)
    tenant = make_tenant()
    old, new = constants.shard_queue(2), constants.dedicated_queue(tenant.slug)
    tenant = put_on_queue(sessions, tenant, old)
    phones = [new_phone() for _ in range(3)]
    today = local_today(tenant.timezone)
    add_customers(sessions, tenant, [customer(f"m{i}", today + dt.timedelta(days=1), p) for i, p in enumerate(phones)])
    # Work queued on the old shard, whose pool is not running.
    sweep_tenant(sql_unit_of_work(sessions), tenant.slug, CeleryReminderQueue(app), settings)
    client = redis.Redis.from_url(url)
    assert queue_depths(client, [old])[old] == 1

    report = move_tenant(
        sql_unit_of_work(sessions),
        tenant.slug,
        new,
        CeleryReminderQueue(app),
        settings,
        lambda: announce_route_change(app, client),
    )
    assert (report.old_queue, report.new_queue, report.republished, report.error) == (old, new, 3, None)
    assert queue_depths(client, [old, new]) == {old: 1, new: 1}

    start_worker("--queues", new, REDIS_URL=url)
    rows = settled(sessions, tenant.id, 3)
    assert {r.status for r in rows} == {"sent"}
    # Now the old shard's pool comes back and runs the stale task: the ledger makes it a no-op.
    stale = start_worker("--shards", "2", REDIS_URL=url)
    wait_until(lambda: queue_depths(client, [old])[old] == 0, 30, "the old shard queue to drain")
    wait_until(lambda: "succeeded" in stale.text(), 30, "the stale task to finish")
    assert [len(requests_to(emulator, p)) for p in phones] == [1, 1, 1]
    with sessions() as session:
        assert session.get(TenantRow, tenant.id).queue == new


def test_route_caches_in_other_processes_follow_a_move(sessions, make_tenant, redis_url, worker_env):
    url = redis_db_url(redis_url, 6)
    settings = load_settings({**worker_env, "REDIS_URL": url})
    tenant = make_tenant()
    tenant = put_on_queue(sessions, tenant, constants.shard_queue(1))
    elsewhere = TenantRouter(settings.database_url, url)  # another process's router and cache
    assert elsewhere("tenant_worker.send_reminders", [tenant.id, [1]], {}, {}) == {"queue": tenant.queue}
    tenant = put_on_queue(sessions, tenant, constants.shard_queue(9))
    # Cached: a move is only visible once announced.
    assert elsewhere("tenant_worker.send_reminders", [tenant.id, [1]], {}, {}) == {"queue": constants.shard_queue(1)}
    bump_routes_version(redis.Redis.from_url(url))
    wait_until(
        lambda: (
            elsewhere("tenant_worker.send_reminders", [tenant.id, [1]], {}, {})["queue"] == constants.shard_queue(9)
        ),
        10,
        "the other router to see the new queue",
    )
    assert elsewhere("tenant_worker.sweep_all_tenants", [], {}, {}) == {"queue": constants.CONTROL_QUEUE}


def test_queues_command_counts_every_shard_and_priority_sub_lists(sessions, make_tenant, redis_url, worker_env):
    url = redis_db_url(redis_url, 7)
    settings = load_settings({**worker_env, "REDIS_URL": url})
    tenant = make_tenant()
    tenant = put_on_queue(sessions, tenant, constants.dedicated_queue(tenant.slug))
    app = create_app(settings)
    app.send_task(constants.TASK_SEND_REMINDERS, args=[tenant.id, [1]], ignore_result=True)
    app.send_task(constants.TASK_SEND_REMINDERS, args=[tenant.id, [2]], ignore_result=True, priority=9)
    app.send_task(constants.TASK_SWEEP_ALL, ignore_result=True)
    client = redis.Redis.from_url(url)
    assert client.llen(tenant.queue) == 1, "the prioritised message should sit in a sub-list"

    out = subprocess.run(
        [str(BIN / "tenant-worker"), "queues", "--json"],
        env={**worker_env, "REDIS_URL": url}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    data = json.loads(out.stdout)
    depths = {q["queue"]: q["depth"] for q in data["queues"]}
    assert depths[tenant.queue] == 2
    assert depths[constants.CONTROL_QUEUE] == 1
    assert [q for q in depths if q.startswith(constants.SHARD_QUEUE_PREFIX)][:2] == [
        "reminders.shard.00",
        "reminders.shard.01",
    ]
    assert len([q for q in depths if q.startswith(constants.SHARD_QUEUE_PREFIX)]) == 16
    assert data["total"] == 3
    assert "s3cr" not in out.stdout + out.stderr
