"""Gauges read from Redis and PostgreSQL when Prometheus scrapes: queue depths, the age of the oldest
``pending`` reminder per queue, and the gateway breaker.

They describe shared state, not one process, so exactly one kind of process exports them: beat (a
leader and a standby both do, and they agree; alert rules take ``max``). Reading them at scrape time
rather than setting them from the recovery tick means a value is never older than the scrape, whichever
worker ran the last tick. A scrape costs one Redis round trip for the depths, one EXISTS, and two index
probes per tenant (below); the answer is kept ``max_age`` seconds, so several scrapers cost no more.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import redis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text

from tenant_worker import constants
from tenant_worker.adapters.db import session_factory
from tenant_worker.adapters.orm import IN_FLIGHT, WAITING
from tenant_worker.adapters.redis_queues import queue_depths
from tenant_worker.domain.shards import all_shard_queues, is_dedicated_queue, shard_of_queue

log = logging.getLogger(__name__)

# Per tenant, the first pending row of each partial index that holds pending rows: the unpublished
# ones by id (claim order) and the published ones by publish time. Two index probes per tenant, however
# big its backlog; the predicates are adapters/orm.py's own, so the planner can prove the indexes apply.
# A row published again after a long wait can hide behind a younger one published before it; the age
# is then under-reported by at most REQUEUE_AFTER_SECONDS.
OLDEST_PENDING = text(
    f"""
    SELECT t.queue, min(o.created_at) AS oldest
      FROM tenants t
      CROSS JOIN LATERAL (
            (SELECT created_at FROM reminders r
              WHERE r.tenant_id = t.id AND ({WAITING})
              ORDER BY id LIMIT 1)
            UNION ALL
            (SELECT created_at FROM reminders r
              WHERE r.tenant_id = t.id AND ({IN_FLIGHT})
                AND status = 'pending'
              ORDER BY enqueued_at LIMIT 1)
      ) o
     GROUP BY t.queue
    """
)


def queue_kind(queue: str) -> str:
    """``shard``, ``dedicated``, ``control`` or ``default``: the ``kind`` label."""
    if shard_of_queue(queue) is not None:
        return "shard"
    if is_dedicated_queue(queue):
        return "dedicated"
    return {constants.CONTROL_QUEUE: "control", constants.DEFAULT_QUEUE: "default"}.get(queue, "other")


@dataclass
class _Reading:
    depths: dict[str, int] = field(default_factory=dict)
    oldest: dict[str, float] = field(default_factory=dict)
    breaker_open: bool = False
    ok: bool = True
    at: float = 0.0


class StateCollector(Collector):
    """The shared-state gauges, for the registry of the process that exports them (beat)."""

    def __init__(self, database_url: str, client: redis.Redis, shard_count: int, max_age: float = 10.0) -> None:
        self.database_url = database_url
        self.client = client
        self.shard_count = shard_count
        self.max_age = max_age
        self._lock = threading.Lock()
        self._reading = _Reading(at=-max_age)

    def read(self) -> _Reading:
        """Ask PostgreSQL and Redis (or return the last answer if it is recent enough)."""
        with self._lock:
            if time.monotonic() - self._reading.at < self.max_age:
                return self._reading
            reading = _Reading(at=time.monotonic())
            try:
                now = dt.datetime.now(dt.UTC)
                with session_factory(self.database_url)() as session:
                    assigned = set(session.scalars(text("SELECT DISTINCT queue FROM tenants")))
                    oldest = session.execute(OLDEST_PENDING).all()
                queues = sorted(set(all_shard_queues(self.shard_count)) | assigned)
                queues += [constants.CONTROL_QUEUE, constants.DEFAULT_QUEUE]
                reading.oldest = {queue: 0.0 for queue in queues if queue_kind(queue) in ("shard", "dedicated")}
                for queue, at in oldest:
                    reading.oldest[queue] = max(0.0, (now - at).total_seconds())
                reading.depths = queue_depths(self.client, queues)
                reading.breaker_open = bool(self.client.exists(constants.GATEWAY_BREAKER_KEY))
            except Exception as exc:  # a scrape must answer; the failure is a metric of its own
                log.warning("metrics: cannot read the shared state: %s", type(exc).__name__)
                reading = _Reading(ok=False, at=time.monotonic())
            self._reading = reading
            return reading

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The gauges (Prometheus calls this on every scrape)."""
        reading = self.read()
        yield GaugeMetricFamily(
            "tenant_worker_state_up", "1 if the last read of Redis and PostgreSQL for these gauges worked", reading.ok
        )
        if not reading.ok:
            return
        depth = GaugeMetricFamily("tenant_worker_queue_depth", "Messages waiting in a queue", labels=["queue", "kind"])
        for queue, count in reading.depths.items():
            depth.add_metric([queue, queue_kind(queue)], count)
        yield depth
        oldest = GaugeMetricFamily(
            "tenant_worker_oldest_pending_seconds",
            "Age of the oldest pending reminder of a shard or dedicated queue's tenants (0: none pending)",
            labels=["queue", "kind"],
        )
        for queue, value in reading.oldest.items():
            oldest.add_metric([queue, queue_kind(queue)], value)
        yield oldest
        yield GaugeMetricFamily(
            "tenant_worker_gateway_breaker_open",
            "1 while the gateway breaker is open (MessageBird rejects the access key; sending paused)",
            int(reading.breaker_open),
        )
