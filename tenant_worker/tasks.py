"""Thin Celery tasks: parse arguments, take the process's ports from the bootstrap, call one service."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery import signals

from tenant_worker import constants
from tenant_worker.adapters import prometheus, sentry, sentry_crons
from tenant_worker.adapters.heartbeat import HeartbeatThread, RedisHeartbeats, process_heartbeat
from tenant_worker.adapters.redis_client import redis_client
from tenant_worker.bootstrap import Services, bootstrap
from tenant_worker.celery_app import app, settings_of
from tenant_worker.domain.ports import EnqueueError
from tenant_worker.services import dispatch, recovery, retention, sending, sweep

log = logging.getLogger(__name__)

# This worker process's composition root, bootstrapped by its first task (after the fork).
_process: list[Services] = []
_process_lock = threading.Lock()


def services() -> Services:
    """The worker process's ports: one bootstrap per process, on the worker's own app."""
    with _process_lock:
        if not _process:
            _process.append(bootstrap(settings_of(app), app))
        return _process[0]


@signals.task_prerun.connect
def _init_sentry(**_: Any) -> None:
    """Sentry starts on a process's first task: after the fork, whatever the pool type."""
    sentry.init_sentry(services().settings)


@signals.worker_process_shutdown.connect
@signals.worker_shutdown.connect
def _flush_sentry(**_: Any) -> None:
    sentry.flush()


@signals.worker_init.connect
def _serve_metrics(**_: Any) -> None:
    """``/metrics`` on METRICS_PORT, served by the worker's main process: with the threads pool (the
    default) it runs every task itself; a prefork pool's children write to PROMETHEUS_MULTIPROC_DIR."""
    settings = settings_of(app)
    if settings.metrics_port:
        prometheus.serve(settings.metrics_host, settings.metrics_port, settings.metrics_dir)


_heartbeat: list[HeartbeatThread] = []


def _consumed(consumer: Any) -> list[str]:
    """The queues the worker consumes now (its task consumer's, or the ones it was started with)."""
    task_consumer = getattr(consumer, "task_consumer", None)
    if task_consumer is not None:
        return [queue.name for queue in task_consumer.queues]
    return list(consumer.app.amqp.queues.consume_from or ())


@signals.worker_ready.connect
def _start_heartbeat(sender: Any, **_: Any) -> None:
    """The worker's heartbeat (adapters/heartbeat.py): its Redis key for `tenant-worker status` and its
    file for the Kubernetes probes, from the moment it consumes."""
    # A client of its own: the process's ports are bootstrapped by the first task, after any fork.
    settings = settings_of(app)
    store = RedisHeartbeats(redis_client(settings.redis_url, settings.redis_sentinel, pool_size=2, socket_timeout=5))
    thread = HeartbeatThread(
        store, lambda: process_heartbeat("worker", sender.hostname, _consumed(sender)), settings.heartbeat_file
    )
    thread.beat_once()
    thread.start()
    _heartbeat.append(thread)


@signals.worker_shutdown.connect
def _stop_heartbeat(**_: Any) -> None:
    while _heartbeat:
        _heartbeat.pop().stop()


@signals.worker_process_shutdown.connect
def _metrics_process_exited(**_: Any) -> None:
    prometheus.process_exited(settings_of(app).metrics_dir)


@contextmanager
def _monitored(monitor: sentry_crons.CronMonitor, entry: str) -> Iterator[None]:
    """Check in with Sentry Crons around a run of the static beat ``entry``, with its schedule (so the
    monitor always matches what beat sends); a task that beat does not schedule is not monitored."""
    scheduled = app.conf.beat_schedule.get(entry)
    if scheduled is None:
        yield
        return
    with sentry_crons.checked_in(monitor, scheduled["schedule"], str(app.conf.timezone or "UTC")):
        yield


@app.task(name=constants.TASK_SEND_REMINDERS, ignore_result=True)
def send_reminders(tenant_id: int, reminder_ids: list[int]) -> dict[str, int]:
    """Send a batch of one tenant's reminders, re-enqueue the transient failures with backoff, then
    publish the tenant's next batch from the ledger (the continuation that keeps shards fair)."""
    ports = services()
    started = time.perf_counter()
    report = sending.send_reminders(
        ports.uow,
        tenant_id,
        reminder_ids,
        ports.gateway,
        ports.executor,
        ports.settings,
        ports.alerts,
        throttle=ports.throttle,
        top_up=True,
        breaker=ports.breaker,
        clock=ports.clock,
    )
    prometheus.BATCH_SECONDS.observe(time.perf_counter() - started)
    prometheus.record_sms(report.queue, report.counts())
    queue = ports.queue
    if report.retry_ids:
        try:
            # Routed like every send task, so the retry stays on the tenant's queue.
            queue.enqueue(tenant_id, report.retry_ids, countdown=report.retry_in)
        except EnqueueError as exc:
            dispatch.mark_unpublished(ports.uow, tenant_id, report.retry_ids)
            log.warning("retry of %d reminders left for the recovery tick: %s", len(report.retry_ids), exc)
    if report.deferred or report.paused:
        # Quiet hours began, or MessageBird rejects the key: the rest waits in the ledger for the
        # recovery tick, not for a continuation that would only be deferred again.
        return {"deferred": report.deferred, "paused": report.paused}
    # The tenant's next batches were stamped in the transaction that recorded this batch's outcomes.
    following = dispatch.PublishReport(published=[])
    dispatch.publish_batches(ports.uow, tenant_id, report.next_ids, queue, ports.settings.send_batch_size, following)
    if following.error:
        log.warning("tenant %s: %s", tenant_id, following.error)
    return {
        "sent": report.sent,
        "failed": report.failed,
        "unknown": report.unknown,
        "skipped": report.skipped,
        "retry": len(report.retry_ids),
        "published": len(following.published),
    }


@app.task(name=constants.TASK_SWEEP_TENANT)
def sweep_tenant(slug: str, local_date: str | None = None) -> dict[str, Any]:
    """Claim and enqueue one tenant's due reminders."""
    day = dt.date.fromisoformat(local_date) if local_date else None
    ports = services()
    return sweep.sweep_tenant(ports.uow, slug, ports.queue, ports.settings, day, ports.clock.now()).as_dict()


@app.task(name=constants.TASK_SWEEP_ALL)
def sweep_all_tenants() -> list[str]:
    """Fan out one sweep task per active tenant (manual catch-up; beat sweeps each tenant daily)."""
    slugs = sweep.tenants_to_sweep(services().uow)
    for slug in slugs:
        sweep_tenant.apply_async(args=[slug])  # the router puts it on the control queue
    return slugs


@app.task(name=constants.TASK_RECOVER, ignore_result=True)
def recover() -> dict[str, Any]:
    """The recovery tick (beat, every RECOVERY_INTERVAL_SECONDS): settle reminders of lost workers,
    probe a paused gateway, publish what no live task carries, deliver held-back alert counts.
    Checks in with the ``tenant-worker-recover`` Sentry Crons monitor: a missed tick means beat or the
    control pool stopped."""
    ports = services()
    with _monitored(sentry_crons.RECOVER, "recover"):
        report = recovery.recover(
            ports.uow,
            ports.queue,
            ports.settings,
            ports.alerts,
            ports.gateway,
            ports.breaker,
            ports.broker_marker,
            ports.clock.now(),
        )
    repaired = {"requeued": report.requeued, "unknown": report.unknown, "failed": report.failed}
    prometheus.record_repairs({**repaired, "republished": report.republished})
    return report.as_dict()


@app.task(name=constants.TASK_RELEASE_DEFERRED, ignore_result=True)
def release_deferred() -> dict[str, Any]:
    """The name beat used before the recovery tick existed: messages already queued under it run the tick."""
    result: dict[str, Any] = recover()
    return result


@app.task(name=constants.TASK_SYNC_SCHEDULES)
def sync_schedules() -> dict[str, Any]:
    """Reconcile the tenants table with RedBeat (run by beat every 15 minutes): the fan-out that keeps
    every tenant's daily sweep entry in place, monitored as one Sentry Crons monitor for all tenants."""
    with _monitored(sentry_crons.SYNC_SCHEDULES, "sync-schedules"):
        return services().schedules().sync().as_dict()


# Retention: well inside the task's soft time limit (celery_app.py); what is left waits for the next
# day, or for `tenant-worker ledger prune`, which has no time bound.
PRUNE_TASK_SECONDS = 120.0


@app.task(name=constants.TASK_PRUNE_LEDGER, ignore_result=True)
def prune_ledger() -> dict[str, Any]:
    """The daily ledger retention (beat, when LEDGER_RETENTION_DAYS is not 0)."""
    ports = services()
    days = ports.settings.ledger_retention_days
    if not days:
        return {"skipped": "LEDGER_RETENTION_DAYS=0"}
    with _monitored(sentry_crons.PRUNE_LEDGER, "prune-ledger"):
        report = retention.prune_ledger(ports.uow, days, ports.clock.now(), max_seconds=PRUNE_TASK_SECONDS)
    log.info(
        "ledger prune: %d reminders older than %d days deleted in %d batches (%.1f s)%s",
        report.deleted,
        days,
        report.batches,
        report.seconds,
        "" if report.complete else "; more remain",
    )
    return report.as_dict()
