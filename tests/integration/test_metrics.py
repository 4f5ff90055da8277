"""Prometheus metrics of real processes: a worker scraped while it sends (its counters must match the
ledger), and beat's shared-state gauges and leadership."""

from __future__ import annotations

import datetime as dt
import re
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from tenant_worker import constants
from tenant_worker.adapters.celery_publisher import CeleryReminderQueue
from tenant_worker.adapters.orm import ReminderRow
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.celery_app import create_app
from tenant_worker.config import load_settings
from tenant_worker.services.sweep import sweep_tenant
from tenant_worker.services.tenants import local_today
from tenant_worker_dev.emulators.messagebird import Fault, MessageBirdEmulator
from tests.conftest import (
    ACCESS_KEY,
    Beat,
    WorkerProcess,
    add_customers,
    customer,
    free_port,
    new_phone,
    put_on_queue,
    redis_db_url,
    wait_until,
)

SAMPLE = re.compile(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$")


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of ``/metrics`` on ``port``: ``(name, labels) -> value``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    samples = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and not line.startswith("#"):
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match[2] or ""))
            samples[(match[1], labels)] = float(match[3])
    return samples


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def statuses(sessions, tenant_id: int) -> Counter[str]:
    with sessions() as session:
        return Counter(session.scalars(select(ReminderRow.status).where(ReminderRow.tenant_id == tenant_id)))


# "processes" is Celery's other name for prefork: `--pool prefork` is taken for Celery's default and
# loses to worker_pool="threads" in celery_app.py.
@pytest.mark.parametrize("pool", ["threads", "processes"])
def test_worker_metrics_scraped_during_a_send_run_match_the_ledger(
    pool: str, sessions, make_tenant, redis_url: str, start_worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    """The default threads pool serves its own registry; a prefork pool's children write to
    PROMETHEUS_MULTIPROC_DIR and the parent serves the sum (files of an earlier run are removed)."""
    multiprocess = {}
    if pool == "processes":
        (tmp_path / "counter_999999.db").write_bytes(b"left over by an earlier run")
        multiprocess = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    tenant = put_on_queue(sessions, make_tenant(), constants.shard_queue(5))
    due = local_today(tenant.timezone) + dt.timedelta(days=1)
    refused, retried = new_phone(), new_phone()
    records = [customer(f"c{i}", due) for i in range(60)]
    records += [customer("refused", due, refused), customer("retried", due, retried)]
    add_customers(sessions, tenant, records)
    port = free_port()
    with MessageBirdEmulator(access_key=ACCESS_KEY, latency=0.03) as gateway:
        gateway.add_faults(refused, [Fault.status(422)])
        gateway.add_faults(retried, [Fault.status(503)])
        worker = start_worker(
            "--shards", "5", "--concurrency", "2", "--pool", pool,
            REDIS_URL=redis_db_url(redis_url, 24), MESSAGEBIRD_ENDPOINT=gateway.url, METRICS_PORT=str(port),
            SEND_BATCH_SIZE="10", MAX_IN_FLIGHT="4", **multiprocess,
        )  # fmt: skip
        assert value(scrape(port), "tenant_worker_sms_total", outcome="sent", shard="5") == 0
        queue = CeleryReminderQueue(create_app(worker.settings))
        assert sweep_tenant(sql_unit_of_work(sessions), tenant.slug, queue, worker.settings).claimed == 62
        during = []

        def settled() -> bool:
            during.append((statuses(sessions, tenant.id), scrape(port)))
            ledger = during[-1][0]
            return ledger["pending"] + ledger["sending"] == 0

        wait_until(settled, 60, "the run to settle", interval=0.1)
        requests = len(gateway.requests())
    # Scraped mid-run: some reminders were still open while the counters already moved.
    assert any(
        ledger["pending"] + ledger["sending"] and value(samples, "tenant_worker_sms_total", outcome="sent", shard="5")
        for ledger, samples in during
    )
    ledger, samples = statuses(sessions, tenant.id), scrape(port)
    assert ledger == {"sent": 61, "failed": 1}
    for outcome in ("sent", "failed"):
        assert value(samples, "tenant_worker_sms_total", outcome=outcome, shard="5") == ledger[outcome]
    assert value(samples, "tenant_worker_sms_total", outcome="retry", shard="5") == 1
    assert value(samples, "tenant_worker_sms_total", outcome="unknown", shard="5") == 0
    assert not [key for key in samples if key[0] == "tenant_worker_sms_total" and ("shard", "5") not in key[1]]
    latencies = sum(v for (name, _), v in samples.items() if name == "tenant_worker_send_seconds_count")
    assert latencies == requests == 63  # 61 sent, 1 refused, 1 answered 503 before it was sent
    assert value(samples, "tenant_worker_send_seconds_count", outcome="retry") == 1
    assert value(samples, "tenant_worker_send_seconds_bucket", outcome="sent", le="0.025") == 0  # latency 0.03 s
    # At least 7 batches of at most 10, plus the retry's batch of one.
    assert value(samples, "tenant_worker_batch_seconds_count") >= 8


def test_beat_exports_its_leadership_queue_depths_oldest_pending_and_the_breaker(
    sessions, make_tenant, redis_url: str, worker_env, start_beat: Callable[..., Beat]
) -> None:
    own_redis = redis_db_url(redis_url, 23)
    client = redis.Redis.from_url(own_redis)
    client.flushdb()
    client.set(constants.GATEWAY_BREAKER_KEY, "test: key rejected")
    settings = load_settings({**worker_env, "REDIS_URL": own_redis})
    tenant = put_on_queue(sessions, make_tenant(), constants.shard_queue(9))
    due = local_today(tenant.timezone) + dt.timedelta(days=3)
    add_customers(sessions, tenant, [customer(f"c{i}", due) for i in range(3)])
    # Published to a queue nobody consumes here: three pending reminders in one message on shard 9.
    queue = CeleryReminderQueue(create_app(settings))
    assert sweep_tenant(sql_unit_of_work(sessions), tenant.slug, queue, settings).enqueued == 3
    port = free_port()
    beat = start_beat(REDIS_URL=own_redis, METRICS_PORT=str(port), RECOVERY_INTERVAL_SECONDS="60")

    def leading() -> dict | None:
        assert beat.process.poll() is None, beat.text()[-3000:]
        try:
            samples = scrape(port)
        except OSError:
            return None
        return samples if value(samples, "tenant_worker_beat_leader") == 1 else None

    samples = wait_until(leading, 30, "beat to lead and export it")
    shard9 = {"queue": constants.shard_queue(9), "kind": "shard"}
    assert value(samples, "tenant_worker_state_up") == 1
    assert value(samples, "tenant_worker_queue_depth", **shard9) == 1
    assert value(samples, "tenant_worker_queue_depth", queue=constants.shard_queue(0), kind="shard") == 0
    assert value(samples, "tenant_worker_oldest_pending_seconds", **shard9) > 0
    assert value(samples, "tenant_worker_gateway_breaker_open") == 1
    control = frozenset({("queue", constants.CONTROL_QUEUE), ("kind", "control")})
    assert ("tenant_worker_queue_depth", control) in samples
    # Bounded labels: one series per queue, none per tenant.
    assert not [key for key in samples if tenant.slug in str(key)]
