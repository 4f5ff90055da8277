"""``tenant-worker status`` and ``probe`` on real processes: a worker's heartbeat appears in Redis and
its file, the probes read them (no broadcast ping), a warm shutdown takes both away; two beats show
as the leader and a standby; the ledger figures count stranded and unknown rows."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import uuid

import redis
from sqlalchemy import insert, select

from tenant_worker.adapters.heartbeat import RedisHeartbeats
from tenant_worker.adapters.ops_status import SqlLedgerHealth
from tenant_worker.adapters.orm import ReminderRow, SubscriptionRow
from tests.conftest import BIN, add_customers, customer, redis_db_url, wait_until


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "tenant-worker"), *args], env=env, capture_output=True, text=True, timeout=60)


def own_redis(worker_env: dict[str, str], redis_url: str, db: int, **extra: str) -> dict[str, str]:
    url = redis_db_url(redis_url, db)
    redis.Redis.from_url(url).flushdb()
    return {**worker_env, "REDIS_URL": url, **extra}


def test_a_worker_heartbeat_feeds_status_and_the_probes_and_a_warm_stop_removes_it(
    start_worker, worker_env, redis_url, tmp_path
):
    heartbeat = str(tmp_path / "worker.heartbeat")
    env = own_redis(worker_env, redis_url, 11, HEARTBEAT_FILE=heartbeat)
    queue = f"status-{uuid.uuid4().hex[:6]}"
    worker = start_worker("--queues", queue, **{k: env[k] for k in ("REDIS_URL", "HEARTBEAT_FILE")})
    beats = RedisHeartbeats(redis.Redis.from_url(env["REDIS_URL"]))

    [mine] = wait_until(lambda: [b for b in beats.live() if queue in b.queues], 10, "the worker's heartbeat")
    assert (mine.kind, mine.queues, mine.pid) == ("worker", (queue,), worker.process.pid)
    assert cli(env, "probe", "worker").returncode == 0
    ready = cli(env, "probe", "worker", "--ready")
    assert ready.returncode == 0, ready.stderr

    status = json.loads(cli(env, "status", "--json").stdout)
    [pool] = status["pools"]
    assert pool["queues"] == [queue] and [w["name"] for w in pool["workers"]] == [mine.name]
    assert status["beat"] == {"leader": None, "leader_alive": False, "standby": []}
    # No worker on this Redis consumes the shard queues: the status says which ones wait for a pool.
    assert all(not q["consumed"] for q in status["queues"] if q["kind"] == "shard")
    table = cli(env, "status").stdout
    assert f"1 x [{queue}]" in table and "beat leader   none" in table

    worker.stop()
    assert worker.process.returncode == 0
    assert not [b for b in beats.live() if queue in b.queues]
    dead = cli(env, "probe", "worker")
    assert dead.returncode == 1 and "no heartbeat" in dead.stderr


def test_status_names_the_beat_leader_and_its_standby(start_beat, worker_env, redis_url, tmp_path):
    env = own_redis(worker_env, redis_url, 12, BEAT_LOCK_TIMEOUT="4", BEAT_MAX_INTERVAL="1")
    overrides = {k: env[k] for k in ("REDIS_URL", "BEAT_LOCK_TIMEOUT", "BEAT_MAX_INTERVAL")}
    first = start_beat(**overrides, HEARTBEAT_FILE=str(tmp_path / "a.heartbeat"))
    second = start_beat(**overrides, HEARTBEAT_FILE=str(tmp_path / "b.heartbeat"))

    def both_seen() -> dict | None:
        data = json.loads(cli(env, "status", "--json").stdout)["beat"]
        return data if data["leader_alive"] and len(data["standby"]) == 1 else None

    beat = wait_until(both_seen, 30, "a leader and a standby in the status")
    pids = {first.process.pid, second.process.pid}
    assert int(beat["leader"].split(":")[1]) in pids
    assert int(beat["standby"][0]["name"].split(":")[1]) in pids - {int(beat["leader"].split(":")[1])}
    probe = cli({**env, "HEARTBEAT_FILE": str(tmp_path / "a.heartbeat")}, "probe", "beat", "--ready")
    assert probe.returncode == 0, probe.stderr


def test_ledger_health_counts_stranded_and_unknown_rows(settings, sessions, make_tenant):
    tenant = make_tenant()
    due = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    add_customers(sessions, tenant, [customer(f"s{i}", due) for i in range(3)])
    now = dt.datetime.now(dt.UTC)
    health = SqlLedgerHealth(settings.database_url, settings.stale_sending_seconds, settings.requeue_after_seconds)
    before = health.read(now)
    with sessions.begin() as session:
        subs = session.scalars(select(SubscriptionRow.id).where(SubscriptionRow.tenant_id == tenant.id)).all()
        long_ago = now - dt.timedelta(hours=2)
        values = [
            {"status": "sending", "updated_at": long_ago, "enqueued_at": long_ago},
            {"status": "pending", "updated_at": long_ago, "enqueued_at": long_ago},
            {"status": "unknown", "updated_at": now - dt.timedelta(minutes=5)},
        ]
        for sub, extra in zip(subs, values, strict=True):
            common = {"tenant_id": tenant.id, "subscription_id": sub, "expires_on": due, "window_days": 1}
            session.execute(insert(ReminderRow).values(**common, local_date=due, created_at=long_ago, **extra))

    after = health.read(now)

    assert after.stranded_sending - before.stranded_sending == 1
    assert after.stranded_published - before.stranded_published == 1
    assert after.unknown_last_day - before.unknown_last_day == 1
    assert after.oldest_pending[tenant.queue] <= long_ago
