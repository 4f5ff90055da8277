"""One incident is one alert, not one per reminder: a real worker and a real `tenant-worker beat` (its
recovery tick every second) send to Sentry a few events per (tenant, status, reason), each with a
count, and the counts add up once the alert window has passed; a rejected access key is one
``gateway_paused`` event however many batches meet it.

The recovery tick acts on every tenant, so this module has its own database, Redis database,
MessageBird emulator and Sentry recorder: it never sends another test's reminders, and every event
the recorder holds is one this module caused.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tenant_worker.adapters import sentry, sentry_crons
from tenant_worker.adapters.celery_publisher import CeleryReminderQueue
from tenant_worker.adapters.db import session_factory
from tenant_worker.adapters.orm import ReminderRow, TenantRow
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.celery_app import create_app
from tenant_worker.config import Settings, load_settings
from tenant_worker.constants import DEFAULT_SHARD_COUNT, GATEWAY_BREAKER_KEY
from tenant_worker.domain.model import TenantSpec
from tenant_worker.services.sweep import sweep_tenant
from tenant_worker.services.tenants import create_tenant, local_today
from tenant_worker_dev.emulators.messagebird import Fault, MessageBirdEmulator
from tenant_worker_dev.emulators.sentry import SentryRecorder
from tests.conftest import (
    ACCESS_KEY,
    ALWAYS_OPEN,
    BIN,
    add_customers,
    customer,
    new_phone,
    own_database,
    redis_db_url,
    unique_slug,
    wait_until,
)

ALERT_DB = 14
ALERT_WINDOW = 2
# Every answer takes this long, so the batches a sweep publishes together are all in flight when
# the first 401 comes back.
LATENCY = 0.25


@dataclass
class Pipeline:
    """A worker and a beat on services of this module's own."""

    sessions: sessionmaker[Session]
    settings: Settings
    emulator: MessageBirdEmulator
    recorder: SentryRecorder
    redis: redis.Redis
    queue: CeleryReminderQueue
    logs: list[Path]

    def tail(self) -> str:
        return "\n".join(f"--- {log.name}\n" + log.read_text(errors="replace")[-3000:] for log in self.logs)


def start(command: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    args = [str(BIN / "tenant-worker"), command, "--loglevel", "INFO"]
    if command == "worker":
        args += ["--hostname", f"alerts-{uuid.uuid4().hex[:6]}@%h", "--without-mingle", "--without-gossip"]
    with log.open("wb") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent)


@pytest.fixture(scope="module")
def pipeline(
    worker_env: dict[str, str], redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    workdir = tmp_path_factory.mktemp("alerts")
    with (
        own_database("tw_alerts") as database_url,
        MessageBirdEmulator(access_key=ACCESS_KEY, latency=LATENCY) as emulator,
        SentryRecorder() as recorder,
    ):
        env = {
            **worker_env,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_db_url(redis_url, ALERT_DB),
            "MESSAGEBIRD_ENDPOINT": emulator.url,
            "SENTRY_DSN": recorder.dsn,
            "ALERT_WINDOW_SECONDS": str(ALERT_WINDOW),
            "RECOVERY_INTERVAL_SECONDS": "1",
            "BEAT_LOCK_TIMEOUT": "6",
            "BEAT_MAX_INTERVAL": "1",
            "SEND_BATCH_SIZE": "10",
        }
        client = redis.Redis.from_url(env["REDIS_URL"])
        client.flushdb()
        settings = load_settings(env)
        logs = [workdir / "worker.log", workdir / "beat.log"]
        processes = [start("worker", env, logs[0])]
        try:
            wait_until(lambda: "ready." in logs[0].read_text(errors="replace") or processes[0].poll() is not None,
                       60, "the worker to be ready")  # fmt: skip
            processes.append(start("beat", env, logs[1]))
            pipeline = Pipeline(
                session_factory(database_url), settings, emulator, recorder, client,
                CeleryReminderQueue(create_app(settings)), logs,
            )  # fmt: skip
            # The recovery tick runs: it initialises Sentry in the worker and flushes alert counts.
            wait_until(lambda: "tenant_worker.recover" in logs[0].read_text(errors="replace")
                       or any(p.poll() is not None for p in processes), 60, "the first recovery tick")  # fmt: skip
            assert all(p.poll() is None for p in processes), pipeline.tail()
            yield pipeline
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
            client.flushdb()
            client.close()


def new_tenant(pipeline: Pipeline) -> TenantRow:
    spec = TenantSpec(unique_slug("alert"), "Acme Fiber", "Europe/Amsterdam", "AcmeFiber", "en", (3,),
                      sending_window=ALWAYS_OPEN)  # fmt: skip
    with sql_unit_of_work(pipeline.sessions)() as tx:
        return create_tenant(tx, spec, shard_count=DEFAULT_SHARD_COUNT)


def statuses(pipeline: Pipeline, tenant: TenantRow) -> list[str]:
    with pipeline.sessions() as session:
        return list(session.scalars(select(ReminderRow.status).where(ReminderRow.tenant_id == tenant.id)))


def reminder_events(pipeline: Pipeline, tenant: TenantRow) -> list[dict[str, Any]]:
    return [e for e in pipeline.recorder.events() if (e.get("tags") or {}).get("tenant") == tenant.slug]


def counted(events: list[dict[str, Any]]) -> int:
    return sum(int(e["contexts"]["reminders"]["count"]) for e in events)


def test_a_hundred_and_twenty_refused_reminders_are_a_few_events_whose_counts_add_up(pipeline):
    tenant = new_tenant(pipeline)
    due = local_today(tenant.timezone) + dt.timedelta(days=3)
    records = [customer(f"r{i}", due, new_phone(), name=f"Zelda Quartermaine{i}") for i in range(120)]
    for record in records:
        pipeline.emulator.add_faults(record.phone, [Fault.status(422)])
    add_customers(pipeline.sessions, tenant, records)

    sweep_tenant(sql_unit_of_work(pipeline.sessions), tenant.slug, pipeline.queue, pipeline.settings)
    wait_until(lambda: statuses(pipeline, tenant).count("failed") == 120, 60, "120 reminders to fail")
    # The first batch's event arrives at once; the rest were counted in Redis and the recovery tick
    # reports them once the window has passed.
    events = wait_until(
        lambda: (found := reminder_events(pipeline, tenant)) and counted(found) >= 120 and found,
        ALERT_WINDOW + 20,
        "the counts of the refused reminders to reach Sentry",
    )

    assert counted(events) == 120
    assert 1 <= len(events) <= 3, [e["contexts"]["reminders"] for e in events]
    for event in events:
        assert (event["tags"]["reminder_status"], event["tags"]["reason"]) == ("failed", "refused")
        assert event["fingerprint"] == ["reminders-ended", tenant.slug, "failed", "refused"]
        assert event["contexts"]["reminders"]["count"] > 0
        assert "no (correct) recipients found" in event["contexts"]["reminders"]["error"]
    raw = b"".join(pipeline.recorder.raw()).decode("utf-8", "replace")
    assert tenant.slug in raw
    for record in records:
        for secret in (record.phone, record.phone.lstrip("+"), record.name):
            assert secret not in raw
    assert "Quartermaine" not in raw


def paused_events(pipeline: Pipeline) -> list[dict[str, Any]]:
    return [e for e in pipeline.recorder.events() if (e.get("tags") or {}).get("alert") == "gateway_paused"]


def test_a_rejected_access_key_is_one_gateway_paused_alert_however_many_batches_meet_it(pipeline):
    tenant = new_tenant(pipeline)
    due = local_today(tenant.timezone) + dt.timedelta(days=3)
    add_customers(pipeline.sessions, tenant, [customer(f"k{i}", due) for i in range(60)])
    pipeline.emulator.set_access_key("revoked-meanwhile")
    try:
        sweep_tenant(sql_unit_of_work(pipeline.sessions), tenant.slug, pipeline.queue, pipeline.settings)
        # Several batches of 10 are in flight when MessageBird starts answering 401.
        wait_until(lambda: pipeline.redis.exists(GATEWAY_BREAKER_KEY), 30, "the gateway breaker to open")
        probes = pipeline.emulator.balance_requests
        # While the key stays wrong, every tick probes it (and batches still queued meet the breaker).
        wait_until(
            lambda: pipeline.emulator.balance_requests >= probes + 3 and set(statuses(pipeline, tenant)) == {"pending"},
            30,
            "three probes of the key with every reminder waiting as pending",
        )
        assert len(paused_events(pipeline)) == 1, pipeline.tail()
        assert reminder_events(pipeline, tenant) == []  # not one alert per reminder: none failed
        rejected = [r for r in pipeline.emulator.requests() if r.status == 401]
        assert len(rejected) > 10, "fewer than two batches of 10 met the rejected key"
    finally:
        pipeline.emulator.set_access_key(ACCESS_KEY)

    # The next probe succeeds: the breaker closes and the waiting reminders go out, without a new alert.
    wait_until(lambda: statuses(pipeline, tenant).count("sent") == 60, 30, "the 60 reminders to be sent")
    assert not pipeline.redis.exists(GATEWAY_BREAKER_KEY)
    [event] = paused_events(pipeline)
    assert event["level"] == "error" and "resumes by itself" in event["message"]
    assert ACCESS_KEY not in b"".join(pipeline.recorder.raw()).decode("utf-8", "replace")


def test_the_real_worker_checks_the_recovery_tick_in_with_sentry_crons_and_every_item_has_release_and_environment(
    pipeline,
):
    # Beat sends the tick every second; the worker reports it at most once a minute (Sentry's rate limit).
    check_ins = wait_until(
        lambda: (found := pipeline.recorder.check_ins(sentry_crons.RECOVER.slug)) and found[-1]["status"] == "ok"
        and found,
        30,
        "the recovery tick's ok check-in",
    )  # fmt: skip
    assert [c["status"] for c in check_ins[:2]] == ["in_progress", "ok"]
    assert check_ins[1]["monitor_config"]["schedule"] == {"type": "interval", "value": 1, "unit": "minute"}
    assert {c["monitor_slug"] for c in pipeline.recorder.check_ins()} <= {m.slug for m in sentry_crons.MONITORS}
    for item in [*pipeline.recorder.events(), *check_ins]:
        assert (item["release"], item["environment"]) == (sentry.RELEASE, pipeline.settings.sentry_environment)
