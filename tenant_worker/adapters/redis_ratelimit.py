"""Send-rate limits shared by every worker process and machine: token buckets in Redis.

One Lua script takes a token from the global bucket (the provider's limit) and, when the tenant has a
rate, from the tenant's bucket, atomically, using Redis's own clock so hosts with skewed clocks agree.
It is a *reservation*: tokens are taken at once (the balance may go negative) and the script answers
how long the caller must wait for each slot. A send batch reserves the slots of all its SMS in one
round trip (not one per SMS), waiting threads never poll, and sends leave evenly spaced at the
configured rate instead of in bursts. Slots due later than ``max_wait`` are not taken, and those
sends are retried later through the normal retry path (the reminder goes back to ``pending``): a
rate limit never drops a message.

redis-py's ``Script`` runs EVALSHA and falls back to EVAL (loading the script) on NOSCRIPT, e.g.
after a Redis restart. The keys share the ``{rate}`` hash tag, so the script also works on a cluster.
"""

from __future__ import annotations

import redis
from redis.exceptions import RedisError

from tenant_worker import constants
from tenant_worker.domain.ports import ThrottleUnavailable

# Burst capacity: a bucket holds this many seconds' worth of tokens. Small on purpose: a provider
# that counts per second would answer 429 to a full second's burst on top of a steady stream.
BURST_SECONDS = 0.1

_RESERVE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local max_wait = tonumber(ARGV[1])
local granted = tonumber(ARGV[2])
local available = {}
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[1 + 2 * i])
  local capacity = tonumber(ARGV[2 + 2 * i])
  local state = redis.call('HMGET', key, 'tokens', 'at')
  local tokens = tonumber(state[1]) or capacity
  local at = tonumber(state[2]) or now
  available[i] = math.min(capacity, tokens + math.max(0, now - at) * rate)
  -- The k-th token of this bucket is due in (k - available) / rate seconds; grant no token due
  -- later than max_wait.
  granted = math.min(granted, math.floor(available[i] + max_wait * rate + 1e-9))
end
if granted < 1 then return {0} end
local answer = {granted}
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[1 + 2 * i])
  local capacity = tonumber(ARGV[2 + 2 * i])
  local balance = available[i] - granted
  redis.call('HSET', key, 'tokens', tostring(balance), 'at', tostring(now))
  redis.call('PEXPIRE', key, math.ceil((capacity - balance) / rate * 1000) + 60000)
  answer[i + 1] = tostring(available[i])
end
return answer
"""


def tenant_bucket(tenant_id: int) -> str:
    """The Redis key of one tenant's bucket."""
    return f"{constants.RATE_BUCKET_PREFIX}tenant:{tenant_id}"


class RedisRateLimiter:
    """Reserves send slots under the global and the tenant's rate (the :class:`SendThrottle` port); the
    caller waits out each slot's delay. Thread-safe and multi-process."""

    def __init__(
        self,
        client: redis.Redis,
        global_rate: float,
        *,
        max_wait: float = 5.0,
        global_key: str = constants.GLOBAL_RATE_BUCKET,
    ) -> None:
        self._script = client.register_script(_RESERVE_LUA)
        self._global_rate, self._max_wait, self._global_key = global_rate, max_wait, global_key

    def reserve_batch(self, tenant_id: int, tenant_rate: float | None, count: int) -> list[float]:
        """Take up to ``count`` slots in one round trip; return, for each slot granted, the seconds to
        wait before its send (evenly spaced at the rate). Slots due later than ``max_wait`` are not
        taken: the list is shorter than ``count`` and the caller retries the rest later."""
        rates: list[float] = []
        keys: list[str] = []
        args: list[float] = [self._max_wait, count]
        for key, rate in ((self._global_key, self._global_rate), (tenant_bucket(tenant_id), tenant_rate or 0.0)):
            if rate > 0:
                keys.append(key)
                rates.append(rate)
                args += [rate, max(1.0, rate * BURST_SECONDS)]
        if not keys or count <= 0:
            return [0.0] * max(count, 0)
        try:
            granted, *available = self._script(keys=keys, args=args)
        except RedisError as exc:
            raise ThrottleUnavailable(f"rate limiter unavailable ({type(exc).__name__})") from None
        balances = [float(a) for a in available]
        return [
            max(0.0, *((k - balance) / rate for balance, rate in zip(balances, rates, strict=True)))
            for k in range(1, int(granted) + 1)
        ]
