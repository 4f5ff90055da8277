"""The Celery application and its configuration; each setting says why it is what it is.

Importing this module reads settings and builds the app, as ``celery -A`` requires, but opens no
connection: prefork children fork after import, and each process's ports (database pool, MessageBird
session, Redis clients, Sentry) are built by ``bootstrap`` on first use, after the fork.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, signals
from celery.schedules import crontab

from tenant_worker import constants
from tenant_worker.adapters.flower_auth import protect_flower_metrics
from tenant_worker.adapters.routes import TenantRouter
from tenant_worker.config import (
    VISIBILITY_TIMEOUT_SECONDS,
    Settings,
    load_settings,
    redact_text,
    secrets_of,
    url_password,
    without_password,
)


def create_app(settings: Settings) -> Celery:
    """Build the Celery app for ``settings`` (tests build their own; workers use :data:`app`)."""
    celery = Celery("tenant_worker", include=["tenant_worker.tasks"])
    transport_options = {
        # Redis has no real acks: a task not acknowledged within this time is delivered again.
        # It must exceed the longest task and every countdown we schedule (see config).
        "visibility_timeout": VISIBILITY_TIMEOUT_SECONDS,
        # Fail fast when Redis is unreachable instead of hanging a sweep.
        "socket_connect_timeout": 5,
        # A Redis that vanished without closing its connections (host crash, network cut, failover to
        # another machine): a publish gives up after 10 s instead of waiting forever, and a consumer's
        # BRPOP that gets no reply is dropped and reconnected within about 21 s (1 s BRPOP + 2 x 10 s)
        # instead of kombu's 51 s. A restart on the same host closes the sockets and is seen at once.
        "socket_timeout": 10,
        "health_check_interval": 10,
    }
    redis_password = url_password(settings.redis_url)
    celery.conf.update(
        broker_url=settings.redis_url,
        result_backend=settings.redis_url,
        broker_transport_options=transport_options,
        # The result backend redelivers/locks with the same visibility semantics; keep them equal.
        result_backend_transport_options=dict(transport_options),
        # JSON only: pickle from a shared broker would be remote code execution.
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        # Workers started before Redis (compose, k8s) keep retrying instead of exiting. A worker that
        # cannot reach Redis for good gives up after this many attempts and exits with status 1
        # (kombu retries forever only with None; we document 0 for that).
        broker_connection_retry_on_startup=True,
        # Redis restarts and outages: a worker that lost the broker reconnects every 2 s at most
        # (adapters/celery_reconnect.py; kombu's intervals grow to 30 s), so it consumes again within
        # ~2 s of Redis answering; by default forever (BROKER_CONNECTION_MAX_RETRIES=0 -> None), so
        # no supervisor is needed after a long outage either.
        broker_connection_max_retries=settings.broker_connection_max_retries or None,
        # Acknowledge after the task ran, and requeue it if the worker process dies: a crash
        # mid-task redelivers the batch, and the ledger's pending->sending claim prevents resends.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # Tasks running when the broker connection drops finish their batch (the SMS are on their way
        # and the outcomes go to PostgreSQL, not Redis); cancelling them would only turn rows whose
        # requests started into `unknown`. Their messages stay in Redis' unacked set, so if the ack
        # cannot be sent they are redelivered after the visibility timeout and find nothing to do.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        # Prefetch: a worker reserves concurrency x 1 messages. Sends are short and I/O bound, so a
        # deeper prefetch gains nothing and would hoard a big tenant's batches that another worker
        # (or a small tenant's batch behind them in the shard) could be served from.
        worker_prefetch_multiplier=1,
        # Pool: threads, not prefork. A send task spends ~all its time waiting for MessageBird, and
        # Little's law says how many requests must be in flight: rate x latency = 500/s x 0.1 s = 50.
        # One process keeps them in flight with MAX_IN_FLIGHT (64) threads sharing one pool of
        # keep-alive connections, fed by WORKER_CONCURRENCY (4) task threads, so while one batch waits for
        # its slowest answer the others keep the pipe full (4 x 50 reminders >= 64 in flight).
        # Prefork would need a pool of sessions per child and a pipe hop per task for nothing; the
        # GIL is no limit here because a send costs well under 1 ms of CPU and 100 ms of waiting. To use more
        # cores, run more worker processes (compose --scale, more replicas): each is one consumer.
        worker_pool="threads",
        worker_concurrency=settings.worker_concurrency,
        # Soft/hard limits apply to prefork only; with threads each send is bounded by the HTTP
        # connect/read timeouts instead. Kept for operators who choose a prefork pool: `--pool processes`
        # (Celery takes `--pool prefork` for its default and keeps the pool configured here).
        task_soft_time_limit=240,
        task_time_limit=300,
        # Results are only for inspection; keep Redis from filling up.
        result_expires=24 * 3600,
        # Nothing is routed to the default queue on purpose; the control pool drains it.
        task_default_queue=constants.DEFAULT_QUEUE,
        # Send tasks follow their tenant's stored queue (shard or dedicated), looked up and cached
        # by the router; control tasks published without a queue (the recovery tick, schedule sync,
        # sweep_all_tenants and its fan-out) go to the small control queue. A tenant's scheduled or
        # run-now sweep names the tenant's queue itself, which wins over the router. Retries are new
        # tasks published through the same router, so they stay on the tenant's queue too (Celery's
        # own Task.retry would reuse the delivery info of the original message instead).
        task_routes=(TenantRouter(settings.database_url, settings.redis_url),),
        # Queues are declared by the router's answer; no queue has to be listed in advance.
        task_create_missing_queues=True,
        # Each tenant's daily sweep is its own RedBeat entry (see adapters/redbeat.py), written by the
        # schedule API, and goes to the tenant's own queue. The static entries: the recovery tick
        # (services/recovery.py: settles reminders of lost workers, republishes lost tasks, publishes
        # reminders held back by quiet hours or a paused gateway, no long countdowns), and reconcile
        # the tenants table with RedBeat in case someone changed one without the other.
        beat_schedule={
            "recover": {"task": constants.TASK_RECOVER, "schedule": settings.recovery_interval_seconds},
            "sync-schedules": {"task": constants.TASK_SYNC_SCHEDULES, "schedule": 900.0},
            # Ledger retention, daily at a quiet hour for Europe (tenants sweep at their send_time).
            **(
                {"prune-ledger": {"task": constants.TASK_PRUNE_LEDGER, "schedule": crontab(hour=3, minute=15)}}
                if settings.ledger_retention_days
                else {}
            ),
        },
        # RedBeat keeps the schedule in Redis, with a leader lock so a second beat waits as a standby.
        beat_scheduler="tenant_worker.beat:Scheduler",
        # Set explicitly (the fallback to broker_url is deprecated): same server, and the password as an
        # option rather than in the URL. Celery masks settings named *PASS* (nested ones too) in
        # `celery inspect conf` and `celery report`, but shows redbeat_redis_url as it is.
        redbeat_redis_url=without_password(settings.redis_url),
        redbeat_redis_options={
            "socket_connect_timeout": 5,
            "socket_timeout": 10,
            "health_check_interval": 30,
            **({"password": redis_password} if redis_password else {}),
        },
        redbeat_key_prefix=constants.REDBEAT_KEY_PREFIX,
        # A crashed leader's lock expires after this and the standby takes over (RedBeat's default
        # would be 25 minutes without sweeps). Beat wakes, and renews the lock, every max interval.
        redbeat_lock_timeout=settings.beat_lock_timeout,
        beat_max_loop_interval=settings.beat_max_interval,
        timezone="UTC",
        enable_utc=True,
        # A message that cannot become a task (not JSON, not an envelope, a body that does not decode,
        # an unknown task) is logged without its body, removed and counted, and the worker carries
        # on; Celery's own consumer logs the body, and stops on some of them (adapters/celery_consumer.py).
        # That consumer, with short reconnect intervals after losing Redis (adapters/celery_reconnect.py).
        worker_consumer="tenant_worker.adapters.celery_reconnect:Consumer",
        worker_hijack_root_logger=True,
        # Task events (what Flower shows) stay off while nobody watches: Flower switches them on in
        # every worker while it runs (its --enable-events, the default) and they stop with it. They
        # are per task, not per SMS: a 50-reminder batch costs three events (README "Flower" has the
        # measured cost). No "sent" events: they would cost every publisher (sweeps, the tick, the
        # API) a message per task, and Flower shows tasks from "received" on without them.
        worker_send_task_events=False,
        task_send_sent_event=False,
    )
    # The settings the app was built from: the tasks bootstrap their process's ports from the same ones.
    celery.tenant_worker_settings = settings
    return celery


def settings_of(celery: Celery) -> Settings:
    """The settings ``celery`` was built from (see :func:`create_app`)."""
    settings: Settings = celery.tenant_worker_settings
    return settings


class RedactingFilter(logging.Filter):
    """Removes passwords and access keys from every log record, whatever logged it."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the formatted message with secrets replaced by ``**``."""
        message = record.getMessage()
        cleaned = redact_text(message, self.secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _install_redaction(logger: logging.Logger, **_: Any) -> None:
    redaction = RedactingFilter(secrets_of(load_settings()))
    for handler in logger.handlers:
        handler.addFilter(redaction)


app = create_app(load_settings())
# `celery -A tenant_worker.celery_app flower`: Flower's /metrics asks for its credentials too.
protect_flower_metrics()
