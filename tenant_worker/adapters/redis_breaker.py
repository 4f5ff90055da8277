"""The gateway circuit breaker in Redis, shared by every worker process and machine, and the marker
that tells the recovery tick when Redis lost its queued tasks.

MessageBird's access key belongs to the whole workspace, so when it is rejected (401/403) no worker
should go on sending: one key in Redis says so. It has no expiry: it stays open until a probe of the
key succeeds (the recovery tick, or a worker starting with a key that works), so a revoked key never
turns reminders into failures, however long it takes to fix.
"""

from __future__ import annotations

import logging

import redis
from redis.exceptions import RedisError

from tenant_worker.constants import BROKER_MARKER_KEY, GATEWAY_BREAKER_KEY

log = logging.getLogger(__name__)


class RedisGatewayBreaker:
    """Open = the key exists (its value is the reason). Redis errors read as closed: a batch that
    could be delivered by Redis can try to send, and at worst meets the rejection itself."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def is_open(self) -> bool:
        """One EXISTS per batch."""
        try:
            return bool(self.client.exists(GATEWAY_BREAKER_KEY))
        except RedisError:
            return False

    def trip(self, reason: str) -> bool:
        """SET NX, so exactly one of the workers that meet the rejection opens it (and alerts)."""
        try:
            opened = bool(self.client.set(GATEWAY_BREAKER_KEY, reason, nx=True))
        except RedisError:
            return False
        if opened:
            log.error("gateway breaker open: %s; sending paused for every tenant until the key works", reason)
        return opened

    def reset(self) -> bool:
        """Close it; True if it was open."""
        try:
            return bool(self.client.delete(GATEWAY_BREAKER_KEY))
        except RedisError:
            return False


class RedisBrokerMarker:
    """Tells whether the broker's Redis lost its data since the last look: a marker key that only this
    class writes and nobody deletes. Absent means every queued task is gone with it."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def lost_since_last_check(self) -> bool:
        """SET NX: True when the marker had to be written again (or for the very first time)."""
        return bool(self.client.set(BROKER_MARKER_KEY, "1", nx=True))
