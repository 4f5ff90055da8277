"""Prometheus metrics: every metric tenant-worker exports, the recorders the entrypoints call, and the
``/metrics`` exposition of a process.

Services never see this module: tasks, beat and the API record what a service reported (a
:class:`~tenant_worker.services.sending.SendReport`, a recovery report), and the one per-request figure
(send latency) is measured by :class:`TimedGateway`, a wrapper around the gateway port that the
bootstrap puts in place. Labels are bounded on purpose: outcomes, shard numbers, a few statuses,
queues; never a tenant (10,000 tenants would be 10,000 series per metric). Per-tenant figures come from
the CLI and the API.

Metrics live in :data:`REGISTRY`, not prometheus_client's default registry, so a process exports
only tenant-worker's (Flower, loaded by Celery's command line in every process, registers its own in
the default one). With ``PROMETHEUS_MULTIPROC_DIR`` set (a prefork pool, ``api --workers N``), every
process writes its values to files there and the exposition merges them (README "Metrics").
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.registry import Collector

from tenant_worker.domain.model import AccessCheck, OutboundSms, SendOutcome
from tenant_worker.domain.ports import SmsGateway
from tenant_worker.domain.shards import is_dedicated_queue, shard_of_queue

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)

SMS = Counter(
    "tenant_worker_sms",
    "Reminders a send task finished, by outcome (sent, failed, unknown, skipped, retry, deferred, paused) "
    "and shard (the tenant's shard number, or 'dedicated')",
    ["outcome", "shard"],
    registry=REGISTRY,
)
SEND_SECONDS = Histogram(
    "tenant_worker_send_seconds",
    "One MessageBird request, from start to classified answer, by outcome",
    ["outcome"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
BATCH_SECONDS = Histogram(
    "tenant_worker_batch_seconds",
    "One send task (a batch of up to SEND_BATCH_SIZE reminders): claim, send, record",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
    registry=REGISTRY,
)
RECOVERY_REPAIRED = Counter(
    "tenant_worker_recovery_repaired_rows",
    "Rows the recovery tick repaired: stale sending rows back to pending (requeued), or ended unknown "
    "or failed; pending rows published again after Redis lost its tasks (republished)",
    ["result"],
    registry=REGISTRY,
)
RECOVERY_TICKS = Counter("tenant_worker_recovery_ticks", "Recovery ticks run", registry=REGISTRY)
STATUS_REPORTS = Counter(
    "tenant_worker_status_reports",
    "MessageBird status reports (delivery receipts) received, by delivery status",
    ["status"],
    registry=REGISTRY,
)
BEAT_LEADER = Gauge(
    "tenant_worker_beat_leader",
    "1 while this beat process holds the leader lock, 0 while it stands by",
    registry=REGISTRY,
    multiprocess_mode="max",
)

# MessageBird's statuses (its "Status reports" documentation); anything else is counted as "other",
# so a surprise value can never add series.
DELIVERY_STATUSES = frozenset(
    {"scheduled", "sent", "buffered", "delivered", "expired", "delivery_failed", "failed", "deleted"}
)
SMS_OUTCOMES = ("sent", "failed", "unknown", "skipped", "retry", "deferred", "paused")


def shard_label(queue: str) -> str:
    """The bounded ``shard`` label of a tenant's queue: its shard number, ``dedicated``, or ``other``."""
    shard = shard_of_queue(queue)
    if shard is not None:
        return str(shard)
    return "dedicated" if is_dedicated_queue(queue) else "other"


def record_sms(queue: str, counts: dict[str, int]) -> None:
    """Count one send task's reminders by outcome (the task's report) for the tenant's ``queue``."""
    shard = shard_label(queue)
    for outcome, count in counts.items():
        if count and outcome in SMS_OUTCOMES:
            SMS.labels(outcome, shard).inc(count)


def record_repairs(counts: dict[str, int]) -> None:
    """Count one recovery tick and the rows it repaired (``{result: rows}``)."""
    RECOVERY_TICKS.inc()
    for result, count in counts.items():
        if count:
            RECOVERY_REPAIRED.labels(result).inc(count)


def count_status_report(status: str) -> None:
    """Count one MessageBird status report (the delivery-receipt webhook calls this per report)."""
    STATUS_REPORTS.labels(status if status in DELIVERY_STATUSES else "other").inc()


class TimedGateway:
    """The gateway port, with each send's duration observed in ``tenant_worker_send_seconds``."""

    def __init__(self, gateway: SmsGateway) -> None:
        self.gateway = gateway

    def send(self, sms: OutboundSms) -> SendOutcome:
        """Send through the wrapped gateway and time it."""
        start = time.perf_counter()
        outcome = self.gateway.send(sms)
        SEND_SECONDS.labels(outcome.kind.value).observe(time.perf_counter() - start)
        return outcome

    def check_access(self) -> AccessCheck:
        """The wrapped gateway's key check."""
        return self.gateway.check_access()

    def close(self) -> None:
        """Close the wrapped gateway."""
        self.gateway.close()


def exposition_registry(multiprocess_dir: str, collectors: Sequence[Collector] = ()) -> CollectorRegistry:
    """What ``/metrics`` serves: this process's registry, or, in multiprocess mode, a registry that
    merges the files every process of the pool wrote in ``multiprocess_dir``; plus ``collectors``."""
    registry = REGISTRY
    if multiprocess_dir:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]
    for collector in collectors:
        registry.register(collector)
    return registry


def exposition(multiprocess_dir: str = "") -> tuple[bytes, str]:
    """The text format of the metrics and its content type (the API's ``/metrics`` route)."""
    return generate_latest(exposition_registry(multiprocess_dir)), CONTENT_TYPE_LATEST


_served: list[int] = []
_served_lock = threading.Lock()


def serve(host: str, port: int, multiprocess_dir: str = "", collectors: Sequence[Collector] = ()) -> bool:
    """Serve ``/metrics`` (with ``collectors`` too) on ``host:port`` from a daemon thread, once per
    process; False if it already serves. In multiprocess mode the files of an earlier run are removed
    first: their counters would be added to this run's (call it in the pool's parent, before the
    children start)."""
    with _served_lock:
        if _served:
            return False
        if multiprocess_dir:
            for stale in Path(multiprocess_dir).glob("*.db"):
                stale.unlink(missing_ok=True)
        try:
            start_http_server(port, addr=host, registry=exposition_registry(multiprocess_dir, collectors))
        except OSError as exc:
            # A port taken (two processes on one host with the same METRICS_PORT) must not stop sending.
            log.error("metrics: cannot serve on %s:%s (%s); this process exports no metrics", host, port, exc)
            return False
        _served.append(port)
        return True


def process_exited(multiprocess_dir: str, pid: int | None = None) -> None:
    """A pool child is exiting: drop its live gauges' files (its counters stay in the sums)."""
    if multiprocess_dir:
        multiprocess.mark_process_dead(pid or os.getpid(), path=multiprocess_dir)  # type: ignore[no-untyped-call]
