"""Per-process resources, created on first use after the fork: settings, sessions, gateway, executor.

Celery tasks and the CLI get their adapters from here, so each worker process has exactly one
MessageBird connection pool and one thread pool for in-flight sends, and none exists at import time.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor

from celery import Celery
from kombu.exceptions import KombuError
from redis.exceptions import RedisError
from sqlalchemy.orm import Session, sessionmaker

from tenant_worker import constants
from tenant_worker.adapters.console import ConsoleGateway
from tenant_worker.adapters.db import session_factory
from tenant_worker.adapters.messagebird import MessageBirdGateway
from tenant_worker.adapters.redis_check import describe_redis
from tenant_worker.config import Settings, load_settings
from tenant_worker.domain.ports import EnqueueError, SmsGateway


@functools.cache
def settings() -> Settings:
    """Settings of this process."""
    return load_settings()


def sessions() -> sessionmaker[Session]:
    """Database sessions for this process."""
    return session_factory(settings().database_url)


@functools.cache
def gateway() -> SmsGateway:
    """The configured SMS gateway, one per process (its connection pool is shared by all threads)."""
    config = settings()
    if config.sms_backend == "messagebird":
        return MessageBirdGateway(
            config.messagebird_access_key,
            config.messagebird_endpoint,
            connect_timeout=config.http_connect_timeout,
            read_timeout=config.http_read_timeout,
            pool_size=config.max_in_flight,
        )
    return ConsoleGateway()


@functools.cache
def send_executor() -> ThreadPoolExecutor:
    """Threads that keep up to ``MAX_IN_FLIGHT`` gateway requests in flight per process."""
    return ThreadPoolExecutor(max_workers=settings().max_in_flight, thread_name_prefix="sms-send")


class CeleryReminderQueue:
    """Publishes send tasks; broker failures become :class:`EnqueueError` (the ledger keeps them pending)."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def enqueue(self, tenant_id: int, reminder_ids: list[int], countdown: float = 0.0) -> None:
        """Publish one ``send_reminders`` task, retrying the connection briefly."""
        try:
            self.app.send_task(
                constants.TASK_SEND_REMINDERS,
                args=[tenant_id, reminder_ids],
                queue=constants.SEND_QUEUE,
                countdown=countdown or None,
                # Results of sends live in the ledger; skipping the result backend also means a
                # publish only needs the broker.
                ignore_result=True,
                retry=True,
                retry_policy={
                    "max_retries": 2,
                    "interval_start": 0.2,
                    "interval_step": 0.5,
                    "interval_max": 1,
                },
            )
        except (KombuError, RedisError, OSError) as exc:
            where = describe_redis(self.app.conf.broker_url)
            raise EnqueueError(f"broker at {where} unavailable: {type(exc).__name__}") from None
