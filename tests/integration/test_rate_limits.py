"""Send-rate limits on the real password-protected Redis, shared by several processes and workers."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from dataclasses import replace

import redis
from sqlalchemy import select

from tenant_worker import constants
from tenant_worker.adapters.celery_publisher import CeleryReminderQueue
from tenant_worker.adapters.orm import ReminderRow
from tenant_worker.adapters.redis_ratelimit import RedisRateLimiter, tenant_bucket
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.celery_app import create_app
from tenant_worker.services.sweep import sweep_tenant
from tenant_worker.services.tenants import local_today
from tenant_worker_dev.emulators.messagebird import MessageBirdEmulator
from tests.conftest import ACCESS_KEY, add_customers, customer, new_phone, put_on_queue, redis_db_url, wait_until

# One process taking send slots and printing when each was granted (wall clock, shared by processes
# on this machine).
GRAB = """
import sys, time, redis
from tenant_worker.adapters.redis_ratelimit import RedisRateLimiter
limiter = RedisRateLimiter(redis.Redis.from_url(sys.argv[1]), float(sys.argv[2]), max_wait=30)
print("ready", flush=True)
sys.stdin.readline()
for _ in range(int(sys.argv[3])):
    [wait] = limiter.reserve_batch(1, None, 1)
    time.sleep(wait)
    print(time.time(), flush=True)
"""


def test_two_processes_together_never_exceed_the_global_rate(redis_url):
    url, rate, each = redis_db_url(redis_url, 9), 40.0, 30
    processes = [
        subprocess.Popen([sys.executable, "-c", GRAB, url, str(rate), str(each)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]  # fmt: skip
    for process in processes:
        assert process.stdout.readline().strip() == "ready"
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()
    grants = sorted(float(line) for p in processes for line in p.communicate(timeout=60)[0].split())
    assert len(grants) == 2 * each
    burst = max(1.0, rate * 0.1)
    # Token bucket: the k-th grant (0-based) cannot come before (k + 1 - burst) / rate seconds after
    # the first; 10 ms of slack covers the gap between Redis granting a slot and the print.
    for k, at in enumerate(grants):
        assert at - grants[0] >= (k + 1 - burst) / rate - 0.01, (k, at - grants[0])


def test_a_reservation_longer_than_the_max_wait_is_refused_and_takes_nothing(redis_url):
    client = redis.Redis.from_url(redis_db_url(redis_url, 9))
    limiter = RedisRateLimiter(client, 0.0, max_wait=0.5, global_key="unused")
    client.delete(tenant_bucket(42))
    assert limiter.reserve_batch(42, 1.0, 1) == [0.0]  # the burst of one
    assert limiter.reserve_batch(42, 1.0, 1) == []  # next slot in ~1 s > 0.5 s
    assert limiter.reserve_batch(42, 1.0, 1) == []  # the refusal took nothing
    assert limiter.reserve_batch(43, None, 1) == [0.0]  # no tenant rate and no global rate: no limit


def test_limiter_reloads_its_script_after_redis_forgets_it(redis_url):
    client = redis.Redis.from_url(redis_db_url(redis_url, 9))
    limiter = RedisRateLimiter(client, 1000.0, global_key=constants.RATE_BUCKET_PREFIX + "reload-test")
    assert len(limiter.reserve_batch(1, None, 1)) == 1
    client.script_flush()
    assert len(limiter.reserve_batch(1, None, 1)) == 1


def ledger(sessions, tenant_id):
    with sessions() as session:
        return session.scalars(select(ReminderRow).where(ReminderRow.tenant_id == tenant_id)).all()


def send_through(sessions, tenant, start_worker, url, provider_rate, worker_env_extra, count=40):
    """Sweep ``count`` reminders through a worker against a provider limited to ``provider_rate``/s."""
    today = local_today(tenant.timezone)
    phones = [new_phone() for _ in range(count)]
    add_customers(sessions, tenant, [customer(f"r{i}", today + dt.timedelta(days=3), p) for i, p in enumerate(phones)])
    tenant = put_on_queue(sessions, tenant, constants.shard_queue(13))
    with MessageBirdEmulator(access_key=ACCESS_KEY, rate_limit_per_second=provider_rate) as provider:
        worker = start_worker("--shards", "13", REDIS_URL=url, MESSAGEBIRD_ENDPOINT=provider.url, **worker_env_extra)
        sweep_tenant(
            sql_unit_of_work(sessions), tenant.slug, CeleryReminderQueue(create_app(worker.settings)), worker.settings
        )

        def settled():
            rows = ledger(sessions, tenant.id)
            return rows if all(r.status not in ("pending", "sending") for r in rows) else None

        rows = wait_until(settled, 60, "every reminder to settle")
        return rows, provider.requests()


def test_provider_429s_are_retried_until_sent_and_never_dropped(sessions, make_tenant, redis_url, start_worker):
    # The worker's own limit is far above the provider's, so the provider answers 429s.
    rows, requests = send_through(
        sessions, make_tenant(), start_worker, redis_db_url(redis_url, 10), provider_rate=10,
        worker_env_extra={"SEND_RATE_PER_SECOND": "0", "SEND_MAX_ATTEMPTS": "20"},
    )  # fmt: skip
    assert {r.status for r in rows} == {"sent"}
    assert any(r.status == 429 for r in requests), "the provider limit was never hit; the test proves nothing"
    accepted = [r.reference for r in requests if r.status == 201]
    assert sorted(accepted) == sorted(str(r.id) for r in rows)


def test_shared_limit_below_the_providers_avoids_429s(sessions, make_tenant, redis_url, start_worker):
    rows, requests = send_through(
        sessions, make_tenant(), start_worker, redis_db_url(redis_url, 11), provider_rate=30,
        worker_env_extra={"SEND_RATE_PER_SECOND": "20"},
    )  # fmt: skip
    assert {r.status for r in rows} == {"sent"}
    assert [r.status for r in requests] == [201] * len(rows)


def test_tenant_rate_limits_one_tenant_below_the_global_rate(sessions, make_tenant, redis_url, start_worker):
    tenant = make_tenant()
    with sql_unit_of_work(sessions)() as tx:
        tx.catalog.save_tenant(replace(tenant, rate_per_second=10.0))
    rows, requests = send_through(
        sessions, tenant, start_worker, redis_db_url(redis_url, 12), provider_rate=15,
        worker_env_extra={"SEND_RATE_PER_SECOND": "1000"}, count=25,
    )  # fmt: skip
    assert {r.status for r in rows} == {"sent"}
    assert [r.status for r in requests] == [201] * len(rows)
