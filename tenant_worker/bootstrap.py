"""The composition root: the one place that knows which adapter implements which port.

:func:`bootstrap` turns settings into a :class:`Services` object for one process. Every entrypoint
(the worker's tasks, beat, the CLI, and the HTTP API) asks it for the ports and hands
them to one service call; nothing else builds an adapter. Tests pass fakes (``bootstrap(settings,
uow=..., gateway=...)``) to replace any part.

Nothing connects when :func:`bootstrap` runs: each adapter is built on first use, after a prefork
pool's fork, so no connection, pool or thread is shared by two processes. Task threads may ask for
one at the same moment, hence the lock around first creation.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar, overload

import redis
from celery import Celery

from tenant_worker.adapters.api_keys import SqlApiKeyStore
from tenant_worker.adapters.celery_publisher import CeleryReminderQueue, announce_route_change
from tenant_worker.adapters.console import ConsoleGateway
from tenant_worker.adapters.db import session_factory
from tenant_worker.adapters.heartbeat import RedisHeartbeats
from tenant_worker.adapters.messagebird import MessageBirdGateway
from tenant_worker.adapters.messagebird_webhooks import MessageBirdSignatures, RedisReplayGuard
from tenant_worker.adapters.ops_status import SqlLedgerHealth
from tenant_worker.adapters.prometheus import TimedGateway
from tenant_worker.adapters.redbeat import RedBeatStore, beat_leader
from tenant_worker.adapters.redis_api import RedisIdempotencyStore, RedisRequestLimiter
from tenant_worker.adapters.redis_breaker import RedisBrokerMarker, RedisGatewayBreaker
from tenant_worker.adapters.redis_client import redis_client
from tenant_worker.adapters.redis_queues import queue_depths
from tenant_worker.adapters.redis_ratelimit import RedisRateLimiter
from tenant_worker.adapters.sentry import SentryAlerts
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.config import Settings, load_settings
from tenant_worker.domain.api_keys import ApiKeyStore
from tenant_worker.domain.ports import (
    SYSTEM_CLOCK,
    AlertSink,
    BrokerMarker,
    Clock,
    GatewayBreaker,
    NoThrottle,
    ReminderQueue,
    ReplayGuard,
    ScheduleStore,
    SendThrottle,
    SmsGateway,
    WebhookVerifier,
)
from tenant_worker.domain.requests import IdempotencyStore, RequestLimiter
from tenant_worker.domain.storage import UnitOfWorkFactory
from tenant_worker.services.report_batcher import ReportBatcher
from tenant_worker.services.schedules import ScheduleService
from tenant_worker.services.status import StatusSources

_T = TypeVar("_T")


class _built(Generic[_T]):
    """A component built on first access, once per :class:`Services`, under its lock."""

    def __init__(self, build: Callable[[Services], _T]) -> None:
        self.build = build
        self.name = build.__name__
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, owner: None, cls: type[Services]) -> _built[_T]: ...

    @overload
    def __get__(self, owner: Services, cls: type[Services]) -> _T: ...

    def __get__(self, owner: Services | None, cls: type[Services]) -> _built[_T] | _T:
        if owner is None:
            return self
        with owner._lock:
            if self.name not in owner._parts:
                owner._parts[self.name] = self.build(owner)
            value: _T = owner._parts[self.name]
            return value


class Services:
    """The ports of one process, each built on first use (see the module docs)."""

    def __init__(self, settings: Settings, app: Celery | None = None, **given: Any) -> None:
        unknown = set(given) - {name for name, value in vars(Services).items() if isinstance(value, _built)}
        if unknown:
            raise TypeError(f"bootstrap got unknown parts {sorted(unknown)}")
        self.settings = settings
        self._app = app
        self._lock = threading.RLock()
        self._parts: dict[str, Any] = dict(given)

    @property
    def app(self) -> Celery:
        """The Celery app tasks are published with (the worker's own, or one built for the CLI)."""
        with self._lock:
            if self._app is None:
                from tenant_worker.celery_app import create_app

                self._app = create_app(self.settings)
            return self._app

    @_built
    def clock(self) -> Clock:
        """The real clock."""
        return SYSTEM_CLOCK

    @_built
    def uow(self) -> UnitOfWorkFactory:
        """Units of work on PostgreSQL (the engine and its pool are made on first connection)."""
        return sql_unit_of_work(session_factory(self.settings.database_url))

    @_built
    def redis(self) -> redis.Redis:
        """tenant-worker's own Redis client (rate buckets, breaker, route version, alert windows)."""
        # Enough connections for every send thread to reserve a rate slot at once.
        size = self.settings.max_in_flight + 8
        return redis_client(self.settings.redis_url, self.settings.redis_sentinel, pool_size=size, socket_timeout=5)

    @_built
    def gateway(self) -> SmsGateway:
        """The SMS gateway, one per process (its connection pool is shared by all threads), each send
        timed for the ``tenant_worker_send_seconds`` histogram."""
        return TimedGateway(build_gateway(self.settings))

    @_built
    def executor(self) -> ThreadPoolExecutor:
        """Threads that keep up to ``MAX_IN_FLIGHT`` gateway requests in flight per process."""
        return ThreadPoolExecutor(max_workers=self.settings.max_in_flight, thread_name_prefix="sms-send")

    @_built
    def throttle(self) -> SendThrottle:
        """The shared send-rate limiter (none for the console backend, which sends nothing)."""
        if self.settings.sms_backend != "messagebird":
            return NoThrottle()
        return RedisRateLimiter(
            self.redis, self.settings.send_rate_per_second, max_wait=self.settings.rate_wait_max_seconds
        )

    @_built
    def breaker(self) -> GatewayBreaker:
        """The gateway circuit breaker shared by every worker (a key in Redis)."""
        return RedisGatewayBreaker(self.redis)

    @_built
    def broker_marker(self) -> BrokerMarker:
        """Tells the recovery tick when Redis lost its queued tasks."""
        return RedisBrokerMarker(self.redis)

    @_built
    def alerts(self) -> AlertSink:
        """Per-incident alerts to Sentry (a no-op until Sentry is initialised in this process)."""
        return SentryAlerts(self.redis, self.settings.alert_window_seconds)

    @_built
    def queue(self) -> ReminderQueue:
        """The task publisher."""
        return CeleryReminderQueue(self.app)

    @_built
    def schedule_store(self) -> ScheduleStore:
        """Beat's schedule store (RedBeat)."""
        return RedBeatStore(self.app)

    @_built
    def webhook_verifier(self) -> WebhookVerifier:
        """Checks MessageBird's webhook signatures on the public URL."""
        return MessageBirdSignatures(self.settings.messagebird_signing_key, self.settings.public_base_url)

    @_built
    def replay_guard(self) -> ReplayGuard:
        """Refuses a webhook signature used before (shared by every API process through Redis)."""
        return RedisReplayGuard(self.redis)

    @_built
    def report_batcher(self) -> ReportBatcher:
        """Records MessageBird's status reports of concurrent requests in shared transactions."""
        return ReportBatcher(self.uow, self.replay_guard, self.alerts, self.clock)

    @_built
    def announce_route_change(self) -> Callable[[], None]:
        """Tells every process's router that a tenant changed queue."""
        return lambda: announce_route_change(self.app, self.redis)

    @_built
    def api_keys(self) -> ApiKeyStore:
        """Tenant API keys on PostgreSQL (looked up on every HTTP request)."""
        return SqlApiKeyStore(session_factory(self.settings.database_url))

    @_built
    def request_limiter(self) -> RequestLimiter:
        """The HTTP API's per-key rate limit, shared by every API process (Redis)."""
        return RedisRequestLimiter(self.redis, self.settings.api_rate_per_second, self.settings.api_rate_burst)

    @_built
    def idempotency(self) -> IdempotencyStore:
        """The HTTP API's remembered ``Idempotency-Key`` answers (Redis)."""
        return RedisIdempotencyStore(self.redis)

    @_built
    def heartbeats(self) -> RedisHeartbeats:
        """The heartbeats of live workers and beats (Redis keys with a TTL)."""
        return RedisHeartbeats(self.redis)

    def status_sources(self) -> StatusSources:
        """What ``tenant-worker status`` reads."""
        settings = self.settings
        ledger = SqlLedgerHealth(settings.database_url, settings.stale_sending_seconds, settings.requeue_after_seconds)
        return StatusSources(
            uow=self.uow,
            heartbeats=self.heartbeats,
            leader=lambda: beat_leader(self.app),
            depths=lambda queues: queue_depths(self.redis, queues),
            ledger=ledger,
            schedules=self.schedules(),
            clock=self.clock,
            shard_count=settings.shard_count,
        )

    def schedules(self) -> ScheduleService:
        """The schedule use cases on this process's ports."""
        return ScheduleService(self.uow, self.schedule_store, self.clock)

    def close(self) -> None:
        """Release what was built (the CLI calls this before it exits; worker processes just exit)."""
        with self._lock:
            parts, self._parts = self._parts, {}
        gateway, executor = parts.get("gateway"), parts.get("executor")
        if gateway is not None:
            gateway.close()
        if executor is not None:
            executor.shutdown(wait=False)


def build_gateway(settings: Settings) -> SmsGateway:
    """A new gateway for ``settings`` (the start-up key check uses a throwaway one: no pooled
    connection may cross a prefork pool's fork)."""
    if settings.sms_backend == "messagebird":
        return MessageBirdGateway(
            settings.messagebird_access_key,
            settings.messagebird_endpoint,
            connect_timeout=settings.http_connect_timeout,
            read_timeout=settings.http_read_timeout,
            pool_size=settings.max_in_flight,
            report_url=settings.report_url,
        )
    return ConsoleGateway()


def bootstrap(settings: Settings | None = None, app: Celery | None = None, **given: Any) -> Services:
    """The object graph of one process: ``settings`` (default: from the environment), the Celery
    ``app`` (default: one built for them on first use), and any parts ``given`` in place of the real
    adapters (tests give fakes)."""
    return Services(settings or load_settings(), app, **given)
