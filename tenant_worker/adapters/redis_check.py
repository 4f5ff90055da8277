"""Redis connectivity checks with errors that explain the problem without revealing the password."""

from __future__ import annotations

from urllib.parse import urlsplit

import redis

from tenant_worker.config import ConfigurationError
from tenant_worker.errors import ServiceUnavailable


def describe_redis(url: str) -> str:
    """``host:port/db`` of a Redis URL, for messages (never the credentials)."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"


def check_redis(url: str, timeout: float = 5.0) -> None:
    """Ping Redis; raise :class:`ConfigurationError` with a clear, secret-free reason on failure
    (:class:`ServiceUnavailable` when it cannot be reached, as opposed to refusing the credentials)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    where = describe_redis(url)
    try:
        client.ping()
    except redis.AuthenticationError:
        raise ConfigurationError(
            f"Redis at {where} rejected the credentials: check REDIS_PASSWORD / REDIS_URL (password not shown)"
        ) from None
    except redis.ResponseError as exc:
        if "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
            raise ConfigurationError(
                f"Redis at {where} requires a password: set REDIS_PASSWORD or REDIS_PASSWORD_FILE"
            ) from None
        raise ConfigurationError(f"Redis at {where} answered an error: {type(exc).__name__}") from None
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        reason = str(exc).split(". ")[0] if "password" not in str(exc).lower() else "connection failed"
        raise ServiceUnavailable(
            f"cannot connect to Redis at {where}: {reason}; start Redis, or fix REDIS_URL / REDIS_HOST and REDIS_PORT"
        ) from None
    finally:
        client.close()
