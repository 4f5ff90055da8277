"""The HTTP API's shared state in Redis: a token bucket per API key, and remembered idempotent answers.

Both are single Lua scripts, so two API processes (or two requests racing on one key) see one
consistent state, and both use Redis's clock and expiry, so hosts with skewed clocks agree. Redis
errors become :class:`RequestStoreUnavailable`; the API answers 503 rather than run a request
unthrottled or twice.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import redis
from redis.exceptions import RedisError

from tenant_worker import constants
from tenant_worker.domain.requests import Claim, RequestStoreUnavailable, StoredAnswer

# A claimed key whose request never answers (its process died) is free again after this long;
# an answer is kept for a day, as the issue asks.
RUNNING_TTL_SECONDS = 300
ANSWER_TTL_SECONDS = 24 * 3600

_BUCKET_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
if tokens < 1 then return tostring((1 - tokens) / rate) end
tokens = tokens - 1
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return '0'
"""

_CLAIM_LUA = """
local held = redis.call('GET', KEYS[1])
if held then return held end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return false
"""


class RedisRequestLimiter:
    """The ``RequestLimiter`` port: ``rate`` requests per second per key, ``burst`` at once."""

    def __init__(self, client: redis.Redis, rate: float, burst: int) -> None:
        self._script = client.register_script(_BUCKET_LUA)
        self._rate, self._burst = rate, burst

    def acquire(self, key_id: str) -> float:
        """0 when the request may run, else how long until the bucket holds a token again."""
        if self._rate <= 0:
            return 0.0
        try:
            wait = self._script(keys=[constants.API_RATE_PREFIX + key_id], args=[self._rate, self._burst])
        except RedisError as exc:
            raise RequestStoreUnavailable(f"rate limiter unavailable ({type(exc).__name__})") from None
        return float(wait)


def _key(scope: str, key: str) -> str:
    # Hashed: a client's key is arbitrary text, and the Redis key stays short and printable.
    return f"{constants.IDEMPOTENCY_PREFIX}{scope}:{hashlib.sha256(key.encode()).hexdigest()}"


class RedisIdempotencyStore:
    """The ``IdempotencyStore`` port: one JSON value per (scope, key)."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._claim = client.register_script(_CLAIM_LUA)

    def claim(self, scope: str, key: str, fingerprint: str) -> Claim | StoredAnswer:
        """Mark the key running, or say what it already holds."""
        running = json.dumps({"fingerprint": fingerprint})
        try:
            held = self._claim(keys=[_key(scope, key)], args=[running, RUNNING_TTL_SECONDS])
        except RedisError as exc:
            raise RequestStoreUnavailable(f"idempotency store unavailable ({type(exc).__name__})") from None
        if held is None:
            return Claim.NEW
        value: dict[str, Any] = json.loads(held)
        if value["fingerprint"] != fingerprint:
            return Claim.MISMATCH
        if "status" not in value:
            return Claim.RUNNING
        return StoredAnswer(value["status"], value["content_type"], base64.b64decode(value["body"]))

    def remember(self, scope: str, key: str, fingerprint: str, answer: StoredAnswer) -> None:
        """Replace the running mark with the answer, kept a day."""
        value = {
            "fingerprint": fingerprint,
            "status": answer.status,
            "content_type": answer.content_type,
            "body": base64.b64encode(answer.body).decode("ascii"),
        }
        try:
            self._client.set(_key(scope, key), json.dumps(value), ex=ANSWER_TTL_SECONDS)
        except RedisError as exc:
            raise RequestStoreUnavailable(f"idempotency store unavailable ({type(exc).__name__})") from None

    def release(self, scope: str, key: str) -> None:
        """Delete the key (a failed first request must not block its retries for minutes)."""
        try:
            self._client.delete(_key(scope, key))
        except RedisError as exc:
            raise RequestStoreUnavailable(f"idempotency store unavailable ({type(exc).__name__})") from None
