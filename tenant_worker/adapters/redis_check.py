"""Redis connectivity checks with errors that explain the problem without revealing the password."""

from __future__ import annotations

from urllib.parse import urlsplit

import redis
from redis.sentinel import MasterNotFoundError

from tenant_worker.adapters.redis_client import redis_client
from tenant_worker.config import ConfigurationError
from tenant_worker.errors import ServiceUnavailable
from tenant_worker.redis_settings import SentinelSettings, redis_db


def describe_redis(url: str, sentinel: SentinelSettings | None = None) -> str:
    """``host:port/db`` of a Redis URL (or a Sentinel master, its sentinels and the database, also
    given as a broker URL ``sentinel://h1:p1/db;sentinel://...``), for messages (never the credentials)."""
    if sentinel is not None:
        return f"{sentinel.describe().removeprefix('Redis ')}, db {redis_db(url)}"
    if url.startswith("sentinel://"):
        hosts = [urlsplit(part).netloc.rpartition("@")[2] for part in url.split(";")]
        return f"the Sentinel master via {', '.join(hosts)}"
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"


def check_redis(url: str, sentinel: SentinelSettings | None = None, timeout: float = 5.0) -> None:
    """Ping Redis (through the sentinels when ``sentinel`` is given); raise :class:`ConfigurationError`
    with a clear, secret-free reason on failure (:class:`ServiceUnavailable` when it cannot be reached,
    as opposed to refusing the credentials)."""
    client = redis_client(url, sentinel, socket_connect_timeout=timeout, socket_timeout=timeout)
    where = describe_redis(url, sentinel)
    settings = "REDIS_PASSWORD / REDIS_SENTINEL_PASSWORD" if sentinel else "REDIS_PASSWORD / REDIS_URL"
    try:
        client.ping()
    except redis.AuthenticationError:
        raise ConfigurationError(
            f"Redis at {where} rejected the credentials: check {settings} (password not shown)"
        ) from None
    except redis.ResponseError as exc:
        if "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
            raise ConfigurationError(
                f"Redis at {where} requires a password: set REDIS_PASSWORD or REDIS_PASSWORD_FILE"
            ) from None
        raise ConfigurationError(f"Redis at {where} answered an error: {type(exc).__name__}") from None
    except MasterNotFoundError as exc:
        # It lists each sentinel's error (reprs without passwords) ending in its kind, e.g. "auth:...".
        if "AuthenticationError" in str(exc):
            raise ConfigurationError(
                f"the sentinels of {where} rejected the credentials: check REDIS_SENTINEL_PASSWORD (not shown)"
            ) from None
        raise ServiceUnavailable(
            f"cannot connect to Redis at {where}: no sentinel answered with a master that is up; start the "
            "sentinels and Redis, or fix REDIS_SENTINELS / REDIS_SENTINEL_MASTER"
        ) from None
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        reason = str(exc).split(". ")[0] if "password" not in str(exc).lower() else "connection failed"
        fix = "REDIS_SENTINELS" if sentinel else "REDIS_URL / REDIS_HOST and REDIS_PORT"
        raise ServiceUnavailable(f"cannot connect to Redis at {where}: {reason}; start Redis, or fix {fix}") from None
    finally:
        client.close()
