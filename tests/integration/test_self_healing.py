"""Faults injected into a running system heal without an operator: a worker killed with SIGKILL
mid-batch, the database dropping the connection that records outcomes, a revoked access key.

Real processes throughout: ``tenant-worker worker`` and ``tenant-worker beat`` subprocesses on their
own Redis database, PostgreSQL, and a MessageBird emulator of the test's own. Recovery settings are
shortened (``STALE_SENDING_SECONDS=4``, a recovery tick every second) instead of waiting minutes.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import time
from collections import Counter

import psycopg
import redis
from sqlalchemy import select

from tenant_worker import constants
from tenant_worker.adapters.celery_publisher import CeleryReminderQueue
from tenant_worker.adapters.orm import ReminderRow, TenantRow
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.celery_app import create_app
from tenant_worker.services.sweep import sweep_tenant
from tenant_worker.services.tenants import local_today
from tenant_worker_dev.emulators.messagebird import MessageBirdEmulator
from tests.conftest import ACCESS_KEY, BIN, add_customers, customer, put_on_queue, redis_db_url, wait_until

STALE = 4
FAST_RECOVERY = {
    "STALE_SENDING_SECONDS": str(STALE),
    "RECOVERY_INTERVAL_SECONDS": "1",
    "RECORD_RETRY_SECONDS": "1",
    "MESSAGEBIRD_CONNECT_TIMEOUT": "0.5",
    "RATE_WAIT_MAX_SECONDS": "1",
    "REQUEUE_AFTER_SECONDS": "3",
    "BEAT_LOCK_TIMEOUT": "6",
    "BEAT_MAX_INTERVAL": "1",
}


def rows(sessions, tenant_id) -> list[ReminderRow]:
    with sessions() as session:
        return list(session.scalars(select(ReminderRow).where(ReminderRow.tenant_id == tenant_id)))


def statuses(sessions, tenant_id) -> Counter[str]:
    return Counter(row.status for row in rows(sessions, tenant_id))


def accepted_for(emulator: MessageBirdEmulator, sessions, tenant_id) -> list[str]:
    """References of the tenant's SMS the emulator accepted. The recovery tick serves every tenant in
    the database, so a test's worker may also send what other tests left pending."""
    ids = {str(row.id) for row in rows(sessions, tenant_id)}
    return [r.reference for r in emulator.accepted() if r.reference in ids]


def all_settled(sessions, tenant_id, count: int) -> bool:
    found = statuses(sessions, tenant_id)
    return sum(found.values()) == count and not (found["pending"] or found["sending"])


def tenant_with_due(sessions, tenant: TenantRow, shard: int, count: int, days: int = 1) -> TenantRow:
    """The tenant on its own shard with ``count`` customers due ``days`` from its local today."""
    tenant = put_on_queue(sessions, tenant, constants.shard_queue(shard))
    due = local_today(tenant.timezone) + dt.timedelta(days=days)
    add_customers(sessions, tenant, [customer(f"c{i}", due) for i in range(count)])
    return tenant


def isolated(redis_url: str, db: int, emulator: MessageBirdEmulator, **extra: str) -> dict[str, str]:
    """Environment of a test's own worker and beat: their own Redis database and emulator."""
    url = redis_db_url(redis_url, db)
    redis.Redis.from_url(url).flushdb()
    return {"REDIS_URL": url, "MESSAGEBIRD_ENDPOINT": emulator.url, **FAST_RECOVERY, **extra}


def test_worker_killed_with_all_of_a_tenants_batches_in_flight_heals_with_no_duplicates(
    sessions, make_tenant, redis_url, start_worker, start_beat
):
    total = 400
    tenant = tenant_with_due(sessions, make_tenant(), shard=5, count=total, days=1)
    with MessageBirdEmulator(access_key=ACCESS_KEY, latency=0.3) as slow:
        # 200 SMS/s shared: a batch's requests start over about a second, so the kill finds some
        # requests answered, some in flight and some not yet started.
        env = isolated(redis_url, 20, slow, SEND_RATE_PER_SECOND="200", MAX_BATCHES_PER_TENANT="4")
        worker = start_worker("--concurrency", "4", **env)
        start_beat(**env)
        report = sweep_tenant(
            sql_unit_of_work(sessions), tenant.slug, CeleryReminderQueue(create_app(worker.settings)), worker.settings
        )
        assert report.enqueued == 200 and report.backlog == total - 200

        wait_until(lambda: len(slow.accepted()) >= 20, 30, "the batches to be in flight")
        os.kill(worker.process.pid, signal.SIGKILL)
        worker.process.wait(10)
        at_kill = rows(sessions, tenant.id)
        sending = [r for r in at_kill if r.status == "sending"]
        started = {r.id for r in sending if r.send_started_at is not None}
        assert sending, "the kill should catch batches in flight"

        killed_at = time.monotonic()
        start_worker("--concurrency", "4", **env)  # what the supervisor does
        wait_until(lambda: all_settled(sessions, tenant.id, total), 90, "every reminder to end")
        healed_in = time.monotonic() - killed_at
        references = Counter(accepted_for(slow, sessions, tenant.id))

    final = {r.id: r for r in rows(sessions, tenant.id)}
    unknown = {i for i, r in final.items() if r.status == "unknown"}
    print(
        f"\nkill -9 with {len(sending)} rows sending ({len(started)} started): {len(unknown)} ended unknown "
        f"(all {len(sending)} before continuous recovery); every row terminal {healed_in:.1f} s after the kill"
    )
    assert [ref for ref, n in references.items() if n > 1] == [], "a customer was texted twice"
    assert set(Counter(r.status for r in final.values())) <= {"sent", "unknown"}
    assert unknown <= started, "only a row whose request may have started may end unknown"
    assert {str(i) for i, r in final.items() if r.status == "sent"} <= set(references)
    never_started = [r.id for r in sending if r.id not in started]
    assert all(final[i].status == "sent" for i in never_started)


def test_outcomes_are_recorded_when_the_database_drops_the_recording_connection(
    sessions, database_url, make_tenant, redis_url, start_worker
):
    count = 50
    tenant = tenant_with_due(sessions, make_tenant(), shard=6, count=count, days=1)
    admin = database_url.replace("postgresql+psycopg://", "postgresql://")
    with MessageBirdEmulator(access_key=ACCESS_KEY, latency=1.0) as slow:
        env = isolated(
            redis_url, 21, slow, RECORD_RETRY_SECONDS="20", STALE_SENDING_SECONDS="60", MESSAGEBIRD_READ_TIMEOUT="5"
        )
        worker = start_worker("--shards", "6", **env)
        sweep_tenant(
            sql_unit_of_work(sessions), tenant.slug, CeleryReminderQueue(create_app(worker.settings)), worker.settings
        )

        def all_started() -> bool:
            found = rows(sessions, tenant.id)
            return len(found) == count and all(r.send_started_at is not None for r in found)

        wait_until(all_started, 30, "the batch's requests to start")
        with psycopg.connect(admin) as blocker:
            # Hold the rows so the worker's recording waits on them, then cut the worker's connection
            # in the middle of that transaction, as a failover would.
            blocker.execute("SELECT id FROM reminders WHERE tenant_id = %s FOR UPDATE", [tenant.id])

            def recording_backend() -> int | None:
                with psycopg.connect(admin, autocommit=True) as probe:
                    found = probe.execute(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock' AND query LIKE '%UPDATE reminders AS r SET%'"
                    ).fetchone()
                return found[0] if found else None

            pid = wait_until(recording_backend, 30, "the worker to record the outcomes")
            with psycopg.connect(admin, autocommit=True) as killer:
                assert killer.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
            blocker.rollback()
        terminated_at = time.monotonic()
        wait_until(lambda: all_settled(sessions, tenant.id, count), 30, "the outcomes to be recorded")
        print(f"\nrecording connection terminated: outcomes recorded {time.monotonic() - terminated_at:.2f} s later")
        accepted = accepted_for(slow, sessions, tenant.id)

    assert len(accepted) == len(set(accepted)) == count
    final = rows(sessions, tenant.id)
    assert {r.status for r in final} == {"sent"}
    assert {str(r.id) for r in final} == set(accepted)
    assert "recording outcomes: database connection lost" in worker.text()


def test_revoked_access_key_pauses_sending_without_failing_a_reminder_and_resumes_once_it_works(
    sessions, make_tenant, redis_url, worker_env, start_worker, start_beat, sentry_recorder
):
    def paused_alerts() -> list[dict[str, object]]:
        return [e for e in sentry_recorder.events() if (e.get("tags") or {}).get("alert") == "gateway_paused"]

    alerts_before = len(paused_alerts())
    count = 120
    tenant = tenant_with_due(sessions, make_tenant(), shard=7, count=count, days=3)
    with MessageBirdEmulator(access_key=ACCESS_KEY) as server:
        env = isolated(redis_url, 22, server)
        breaker = redis.Redis.from_url(env["REDIS_URL"])
        server.set_access_key("rotated-elsewhere")

        production = subprocess.run(
            [str(BIN / "tenant-worker"), "worker"],
            env={**worker_env, **env, "TENANT_WORKER_ENV": "production"},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert production.returncode != 0
        assert "MESSAGEBIRD_ACCESS_KEY" in production.stderr and ACCESS_KEY not in production.stderr

        worker = start_worker("--concurrency", "2", **env)
        assert "MessageBird rejects MESSAGEBIRD_ACCESS_KEY" in worker.text()
        start_beat(**env)
        sweep_tenant(
            sql_unit_of_work(sessions), tenant.slug, CeleryReminderQueue(create_app(worker.settings)), worker.settings
        )

        wait_until(lambda: breaker.exists(constants.GATEWAY_BREAKER_KEY), 30, "the breaker to open")
        probes = server.balance_requests
        wait_until(lambda: server.balance_requests >= probes + 2, 30, "the recovery tick to probe the key")
        held = statuses(sessions, tenant.id)
        assert held["failed"] == held["sent"] == 0 and held["pending"] + held["sending"] == count

        server.set_access_key(ACCESS_KEY)  # the key works again
        fixed_at = time.monotonic()
        wait_until(lambda: all_settled(sessions, tenant.id, count), 60, "everything to be sent")
        print(f"\nkey fixed: all {count} reminders sent {time.monotonic() - fixed_at:.1f} s later (recovery tick 1 s)")
        accepted = accepted_for(server, sessions, tenant.id)

    assert statuses(sessions, tenant.id) == {"sent": count}
    assert len(accepted) == len(set(accepted)) == count
    assert not breaker.exists(constants.GATEWAY_BREAKER_KEY)
    wait_until(lambda: len(paused_alerts()) > alerts_before, 15, "the gateway alert")
    assert len(paused_alerts()) == alerts_before + 1
