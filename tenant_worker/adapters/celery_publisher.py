"""The task publisher on Celery: send tasks go through the app's router onto the tenant's queue."""

from __future__ import annotations

import redis
from celery import Celery
from kombu.exceptions import KombuError
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from tenant_worker import constants
from tenant_worker.adapters.redis_check import describe_redis
from tenant_worker.adapters.routes import TenantRouter, bump_routes_version
from tenant_worker.domain.backoff import BROKER_PUBLISH
from tenant_worker.domain.ports import EnqueueError


class CeleryReminderQueue:
    """``domain.ports.ReminderQueue`` on Celery; broker or route-lookup failures become
    :class:`EnqueueError` (the ledger keeps the reminders pending)."""

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
                retry_policy=BROKER_PUBLISH.kombu_options(),
            )
        except (KombuError, RedisError, OSError) as exc:
            where = describe_redis(self.app.conf.broker_url)
            raise EnqueueError(f"broker at {where} unavailable: {type(exc).__name__}") from None
        except SQLAlchemyError as exc:
            raise EnqueueError(f"cannot look up the tenant's queue: {type(exc).__name__}") from None


def announce_route_change(app: Celery, client: redis.Redis) -> None:
    """After a tenant moved: invalidate this process's routes now and every other process's soon."""
    bump_routes_version(client)
    for router in app.conf.task_routes or ():
        if isinstance(router, TenantRouter):
            router.cache.invalidate()
