"""Per-process resources, created on first use after the fork: settings, sessions, gateway, executor,
rate limiter and the task publisher.

Celery tasks and the CLI get their adapters from here, so each worker process has exactly one
MessageBird connection pool, one thread pool for in-flight sends and one Redis client for the rate
limiter, and none exists at import time. Task threads (the threads pool) may ask for them at the same
moment, hence the lock around first creation.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import redis
from celery import Celery
from kombu.exceptions import KombuError
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from tenant_worker import constants
from tenant_worker.adapters.console import ConsoleGateway
from tenant_worker.adapters.db import session_factory
from tenant_worker.adapters.messagebird import MessageBirdGateway
from tenant_worker.adapters.redis_breaker import RedisBrokerMarker, RedisGatewayBreaker
from tenant_worker.adapters.redis_check import describe_redis
from tenant_worker.adapters.redis_ratelimit import RedisRateLimiter
from tenant_worker.adapters.routes import TenantRouter, bump_routes_version
from tenant_worker.adapters.sentry import SentryAlerts
from tenant_worker.config import Settings, load_settings
from tenant_worker.domain.ports import EnqueueError, NoThrottle, SendThrottle, SmsGateway

_T = TypeVar("_T")
_creation = threading.RLock()


def _once(factory: Callable[[], _T]) -> Callable[[], _T]:
    """functools.cache plus a lock, so two task threads never build two gateways or pools."""
    cached = functools.cache(factory)

    @functools.wraps(factory)
    def get() -> _T:
        with _creation:
            return cached()

    return get


@_once
def settings() -> Settings:
    """Settings of this process."""
    return load_settings()


def sessions() -> sessionmaker[Session]:
    """Database sessions for this process."""
    return session_factory(settings().database_url)


@_once
def gateway() -> SmsGateway:
    """The configured SMS gateway, one per process (its connection pool is shared by all threads)."""
    return build_gateway(settings())


def build_gateway(config: Settings) -> SmsGateway:
    """A new gateway for ``config`` (the start-up key check uses a throwaway one: no pooled
    connection may cross a prefork pool's fork)."""
    if config.sms_backend == "messagebird":
        return MessageBirdGateway(
            config.messagebird_access_key,
            config.messagebird_endpoint,
            connect_timeout=config.http_connect_timeout,
            read_timeout=config.http_read_timeout,
            pool_size=config.max_in_flight,
        )
    return ConsoleGateway()


@_once
def send_executor() -> ThreadPoolExecutor:
    """Threads that keep up to ``MAX_IN_FLIGHT`` gateway requests in flight per process."""
    return ThreadPoolExecutor(max_workers=settings().max_in_flight, thread_name_prefix="sms-send")


@_once
def redis_client() -> redis.Redis:
    """This process's Redis client for tenant-worker's own keys (rate buckets, route version)."""
    # Enough connections for every send thread to reserve a rate slot at once.
    pool = redis.BlockingConnectionPool.from_url(
        settings().redis_url, max_connections=settings().max_in_flight + 8, timeout=10, socket_timeout=5
    )
    return redis.Redis(connection_pool=pool)


@_once
def throttle() -> SendThrottle:
    """The shared send-rate limiter (none for the console backend, which sends nothing)."""
    config = settings()
    if config.sms_backend != "messagebird":
        return NoThrottle()
    return RedisRateLimiter(redis_client(), config.send_rate_per_second, max_wait=config.rate_wait_max_seconds)


@_once
def breaker() -> RedisGatewayBreaker:
    """The gateway circuit breaker shared by every worker (a key in Redis)."""
    return RedisGatewayBreaker(redis_client())


def broker_marker() -> RedisBrokerMarker:
    """Tells the recovery tick when Redis lost its queued tasks."""
    return RedisBrokerMarker(redis_client())


@_once
def alerts() -> SentryAlerts:
    """Per-incident alerts to Sentry (a no-op until Sentry is initialised in this process)."""
    return SentryAlerts(redis_client(), settings().alert_window_seconds)


def announce_route_change(app: Celery, client: redis.Redis) -> None:
    """After a tenant moved: invalidate this process's routes now and every other process's soon."""
    bump_routes_version(client)
    for router in app.conf.task_routes or ():
        if isinstance(router, TenantRouter):
            router.cache.invalidate()


class CeleryReminderQueue:
    """Publishes send tasks through the app's router (so they land on the tenant's queue); broker or
    route-lookup failures become :class:`EnqueueError` (the ledger keeps the reminders pending)."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def enqueue(
        self, tenant_id: int, reminder_ids: list[int], countdown: float = 0.0, queue: str | None = None
    ) -> None:
        """Publish one ``send_reminders`` task, retrying the connection briefly."""
        # An explicit queue (the sweep just read the tenant row) spares the router its lookup.
        route = {"queue": queue} if queue else {}
        try:
            self.app.send_task(
                constants.TASK_SEND_REMINDERS,
                args=[tenant_id, reminder_ids],
                countdown=countdown or None,
                **route,
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
        except SQLAlchemyError as exc:
            raise EnqueueError(f"cannot look up the tenant's queue: {type(exc).__name__}") from None
