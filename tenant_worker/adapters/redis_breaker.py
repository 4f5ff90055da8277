"""The gateway circuit breaker in Redis, shared by every worker process and machine.

MessageBird's access key belongs to the whole workspace, so when it is rejected (401/403) no worker
should go on sending: one key in Redis says so. It has no expiry: it stays open until a probe of the
key succeeds (the recovery tick, or a worker starting with a key that works), so a revoked key never
turns reminders into failures, however long it takes to fix.
"""

from __future__ import annotations

import logging

import redis
from redis.exceptions import RedisError

from tenant_worker.constants import GATEWAY_BREAKER_KEY

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
