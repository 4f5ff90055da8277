"""Settings: the one place that reads the environment.

Everything else receives a frozen :class:`Settings`, so tests can build one explicitly and no module
reads ``os.environ`` behind the caller's back. Redis credentials can come from ``REDIS_URL`` or from
the ``REDIS_*`` variables (``REDIS_PASSWORD_FILE`` for container secrets); the database password can
come from ``DATABASE_PASSWORD_FILE`` (or ``DATABASE_PASSWORD``) next to a ``DATABASE_URL`` without one.
Passwords are URL-encoded when they are put into a URL, so passwords containing ``#@:/%`` work, and
:func:`redact_url` is what every log line and error message uses to show a URL.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit, urlunsplit

from tenant_worker.constants import DEFAULT_HEARTBEAT_FILE, DEFAULT_SHARD_COUNT, DLR_PATH
from tenant_worker.domain.backoff import DATABASE_RECONNECT, RetryPolicy
from tenant_worker.domain.delivery import DEFAULT_STOP_KEYWORDS
from tenant_worker.domain.windows import MAX_WINDOW_DAYS
from tenant_worker.redaction import redact_text as redact_text
from tenant_worker.redaction import redact_url as redact_url
from tenant_worker.redaction import url_password as url_password
from tenant_worker.redaction import without_password as without_password
from tenant_worker.redis_settings import SentinelSettings, build_redis_url, sentinel_settings

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/tenant_worker"
MESSAGEBIRD_REST_ENDPOINT = "https://rest.messagebird.com"

# The Redis visibility timeout: an unacknowledged task is redelivered after this long. Every
# countdown/ETA the project schedules must stay well below it, or Redis redelivers it in a loop.
VISIBILITY_TIMEOUT_SECONDS = 3600
# An admin key opens every tenant: refuse one short enough to guess (openssl rand -hex 32 makes 64).
MIN_ADMIN_KEY_LENGTH = 24


class ConfigurationError(ValueError):
    """A setting is missing or malformed; the message never contains a secret."""


@dataclass(frozen=True)
class Settings:
    """All runtime configuration, resolved once from the environment."""

    redis_url: str = field(repr=False)
    # Redis Sentinel (redis_settings.py): when set, every client finds the master through it, and
    # redis_url only supplies the master's password and database.
    redis_sentinel: SentinelSettings | None = None
    database_url: str = field(default=DEFAULT_DATABASE_URL, repr=False)
    sms_backend: str = "console"
    messagebird_access_key: str = field(default="", repr=False)
    messagebird_endpoint: str = MESSAGEBIRD_REST_ENDPOINT
    sentry_dsn: str = field(default="", repr=False)
    sentry_environment: str = "development"
    # MessageBird client: how long to wait to connect and for an answer, and how many requests one
    # worker process keeps in flight. Little's law: in flight = rate x latency, so the provider's
    # 500 SMS/s at 100 ms needs 50; 64 leaves room for slower answers (see celery_app.py).
    http_connect_timeout: float = 3.0
    http_read_timeout: float = 10.0
    max_in_flight: int = 64
    # Send tasks one worker process runs at once (threads pool): several batches overlap, so one
    # batch's slowest answer never leaves the process idle.
    worker_concurrency: int = 4
    # Shards for tenants created from now on (existing tenants keep the queue stored on their row).
    shard_count: int = DEFAULT_SHARD_COUNT
    # Fairness: at most this many send batches of one tenant are queued or running at once; each
    # finished batch publishes the tenant's next one, so tenants sharing a shard interleave.
    max_batches_per_tenant: int = 4
    # Token buckets in Redis shared by every worker: the provider's limit for all tenants together,
    # and an optional default per tenant (a tenant's own ``rate_per_second`` wins). 0 = no limit.
    send_rate_per_second: float = 500.0
    tenant_rate_per_second: float = 0.0
    # A send that cannot get a token within this long goes back to pending and is retried later.
    rate_wait_max_seconds: float = 5.0
    # Retries of transient gateway errors (429, 5xx, connection refused): exponential backoff with
    # equal jitter, capped well under the visibility timeout.
    send_max_attempts: int = 5
    retry_base_seconds: float = 5.0
    retry_cap_seconds: float = 300.0
    send_batch_size: int = 50
    # A reminder still ``sending`` this long after its claim lost its worker: the recovery tick sends it
    # again if its request never started, else marks it ``unknown``. It must exceed the longest a
    # live task holds a row: a rate-limit wait, connect and read timeouts, and the recording retries.
    stale_sending_seconds: int = 300
    # How often beat runs the recovery tick (stale rows, lost tasks, deferred reminders, breaker probe).
    recovery_interval_seconds: float = 30.0
    # How long a send task keeps retrying to record its outcomes when the database drops it.
    record_retry_seconds: float = 60.0
    # Sentry: at most one event per (tenant, status, reason) in this window; the rest are counted
    # and reported, with their count, by the next event or the recovery tick.
    alert_window_seconds: int = 600
    # A reminder still ``pending`` this long after its task was published is published again by the
    # next sweep (its task was lost, e.g. the process died between claim and publish). Duplicate
    # tasks are harmless: sending claims each row atomically.
    requeue_after_seconds: int = 600
    # "production" makes worker and beat refuse a Redis without credentials (see require_credentials).
    environment: str = "development"
    # RedBeat leader lock: a crashed beat's lock expires after this long and a standby takes over.
    # RedBeat's default (5 x beat interval = 25 minutes) would mean 25 minutes without sweeps.
    beat_lock_timeout: int = 60
    # Beat wakes at least this often; each wake-up renews the lock, so it must stay well below the
    # lock timeout, and a standby polls for the lock at the same pace.
    beat_max_interval: int = 5
    # A worker that lost Redis reconnects (every 2 s at most, adapters/celery_reconnect.py) this many
    # times and then exits with status 1, so its supervisor restarts it and the outage shows up as a
    # failing process. 0 (the default) retries forever: a Redis outage of any length needs no supervisor.
    broker_connection_max_retries: int = 0
    # Ledger retention: the daily prune deletes closed reminders of past cycles (and of removed
    # subscriptions) last changed more than this many days ago; 0 = never. The default keeps a year
    # and a month: last year's reminders of a yearly subscription stay for support and disputes
    # ("was I reminded last time?"), and the month covers a late renewal and the 60-day windows.
    # At least MAX_WINDOW_DAYS + 30 (services/retention.py says why).
    ledger_retention_days: int = 400
    # Delivery receipts: where MessageBird reaches our webhooks from the internet (every SMS carries
    # ``reportUrl`` = this + DLR_PATH; empty: none is asked for), and the key MessageBird signs them
    # with (its dashboard's signing key, not the access key). Replies equal to a STOP keyword opt out.
    public_base_url: str = ""
    messagebird_signing_key: str = field(default="", repr=False)
    stop_keywords: tuple[str, ...] = DEFAULT_STOP_KEYWORDS
    # The HTTP control plane (``tenant-worker api``). Loopback by default: exposing it is a decision
    # (compose and k8s set 0.0.0.0 behind their own network rules).
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    # Admin keys act on every tenant; several so one can be rotated without downtime. Never logged.
    admin_api_keys: tuple[str, ...] = field(default=(), repr=False)
    # Per API key token bucket: requests per second sustained, and how many may come at once. 0 = no limit.
    api_rate_per_second: float = 50.0
    api_rate_burst: int = 100
    # Prometheus: worker and beat serve /metrics on METRICS_HOST:METRICS_PORT (0: off); a prefork pool or
    # `api --workers N` shares its metrics through files in PROMETHEUS_MULTIPROC_DIR (README "Metrics").
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    metrics_dir: str = ""
    # Worker and beat touch this file from their heartbeat thread; `tenant-worker probe` (the k8s
    # liveness/readiness exec probe) reads its age instead of pinging the process through the broker.
    heartbeat_file: str = DEFAULT_HEARTBEAT_FILE

    def __post_init__(self) -> None:
        if self.sms_backend not in ("console", "messagebird"):
            raise ConfigurationError(f"SMS_BACKEND must be 'console' or 'messagebird', not {self.sms_backend!r}")
        if self.sms_backend == "messagebird" and not self.messagebird_access_key:
            raise ConfigurationError("SMS_BACKEND=messagebird needs MESSAGEBIRD_ACCESS_KEY")
        if self.retry_cap_seconds >= VISIBILITY_TIMEOUT_SECONDS:
            raise ConfigurationError("SEND_RETRY_CAP_SECONDS must stay below the broker visibility timeout")
        if self.requeue_after_seconds <= self.retry_cap_seconds:
            raise ConfigurationError("REQUEUE_AFTER_SECONDS must exceed SEND_RETRY_CAP_SECONDS")
        if self.max_in_flight < 1 or self.send_batch_size < 1 or self.send_max_attempts < 1:
            raise ConfigurationError("MAX_IN_FLIGHT, SEND_BATCH_SIZE and SEND_MAX_ATTEMPTS must be >= 1")
        if self.shard_count < 1 or self.max_batches_per_tenant < 1 or self.worker_concurrency < 1:
            raise ConfigurationError("SHARD_COUNT, MAX_BATCHES_PER_TENANT and WORKER_CONCURRENCY must be >= 1")
        if self.send_rate_per_second < 0 or self.tenant_rate_per_second < 0:
            raise ConfigurationError("SEND_RATE_PER_SECOND and TENANT_RATE_PER_SECOND must be >= 0 (0 = no limit)")
        if not 0 < self.recovery_interval_seconds <= 60:
            raise ConfigurationError("RECOVERY_INTERVAL_SECONDS must be between 0 and 60")
        held = self.rate_wait_max_seconds + self.http_connect_timeout + self.http_read_timeout
        if self.stale_sending_seconds <= held + self.record_retry_seconds:
            raise ConfigurationError(
                "STALE_SENDING_SECONDS must exceed RATE_WAIT_MAX_SECONDS + MESSAGEBIRD_CONNECT_TIMEOUT + "
                f"MESSAGEBIRD_READ_TIMEOUT + RECORD_RETRY_SECONDS ({held + self.record_retry_seconds:g} s)"
            )
        if self.beat_max_interval < 1 or self.beat_lock_timeout < 2 * self.beat_max_interval:
            raise ConfigurationError("BEAT_LOCK_TIMEOUT must be at least twice BEAT_MAX_INTERVAL (and both >= 1)")
        if self.broker_connection_max_retries < 0:
            raise ConfigurationError("BROKER_CONNECTION_MAX_RETRIES must be >= 0 (0 = retry forever)")
        base = self.public_base_url
        if base and (urlsplit(base).scheme not in ("http", "https") or base.endswith("/") or "?" in base):
            raise ConfigurationError("PUBLIC_BASE_URL must be an https:// (or http://) URL without a final / or query")
        if self.ledger_retention_days and self.ledger_retention_days < MAX_WINDOW_DAYS + 30:
            raise ConfigurationError(f"LEDGER_RETENTION_DAYS must be 0 (off) or at least {MAX_WINDOW_DAYS + 30}")
        if not 0 < self.api_port < 65536 or not 0 <= self.metrics_port < 65536:
            raise ConfigurationError("API_PORT and METRICS_PORT must be between 1 and 65535 (METRICS_PORT 0: off)")
        if self.api_rate_per_second < 0 or self.api_rate_burst < 1:
            raise ConfigurationError("API_RATE_PER_SECOND must be >= 0 (0 = no limit) and API_RATE_BURST >= 1")
        if any(len(key) < MIN_ADMIN_KEY_LENGTH for key in self.admin_api_keys):
            raise ConfigurationError(f"every admin API key must have at least {MIN_ADMIN_KEY_LENGTH} characters")

    @property
    def send_retry(self) -> RetryPolicy:
        """Backoff of a send task's retry after a transient gateway error (counted in attempts)."""
        return RetryPolicy(self.retry_base_seconds, self.retry_cap_seconds)

    @property
    def record_retry(self) -> RetryPolicy:
        """How a send task waits out a database that dropped it while recording outcomes."""
        return replace(DATABASE_RECONNECT, give_up_after=self.record_retry_seconds)

    @property
    def report_url(self) -> str | None:
        """The ``reportUrl`` every SMS is sent with, or None without ``PUBLIC_BASE_URL``."""
        return self.public_base_url + DLR_PATH if self.public_base_url else None

    @property
    def production(self) -> bool:
        """Whether ``TENANT_WORKER_ENV=production``."""
        return self.environment == "production"

    def require_credentials(self) -> None:
        """In production, refuse a Redis URL without a password: an open Redis runs anyone's tasks."""
        if self.production and not urlsplit(self.redis_url).password:
            raise ConfigurationError(
                f"TENANT_WORKER_ENV=production refuses Redis without credentials ({self.redacted_redis_url}): "
                "set REDIS_PASSWORD_FILE or REDIS_PASSWORD, or put them in REDIS_URL"
            )

    @property
    def redacted_redis_url(self) -> str:
        """The Redis URL (or the Sentinel master and sentinels) safe to print."""
        return self.redis_sentinel.describe() if self.redis_sentinel else redact_url(self.redis_url)


def secrets_of(settings: Settings) -> list[str]:
    """The values that must never be logged or printed: the Redis and database passwords, the access key
    and the webhook signing key."""
    return [
        url_password(settings.redis_url),
        settings.redis_sentinel.password if settings.redis_sentinel else "",
        url_password(settings.database_url),
        settings.messagebird_access_key,
        settings.messagebird_signing_key,
        *settings.admin_api_keys,
    ]


def add_database_password(url: str, password: str, source: str = "DATABASE_PASSWORD") -> str:
    """Put ``password``, percent-encoded so any character is safe, into the database ``url``.

    The URL must name the user and carry no password of its own: with two passwords it would be a
    guess which one the operator meant, so that is an error naming ``source`` (the variable the
    password came from) rather than a silent choice.
    """
    parts = urlsplit(url)
    userinfo, at, hostinfo = parts.netloc.rpartition("@")
    if ":" in userinfo or "password" in parse_qs(parts.query):
        raise ConfigurationError(
            f"DATABASE_URL already contains a password and {source} is set too: remove the password from DATABASE_URL"
        )
    if not at or not userinfo:
        raise ConfigurationError(
            f"DATABASE_URL ({redact_url(url)}) names no user for the password from {source}: "
            "write it as postgresql://USER@HOST:PORT/DATABASE"
        )
    return urlunsplit(parts._replace(netloc=f"{userinfo}:{quote(password, safe='')}@{hostinfo}"))


def _read_secret(env: Mapping[str, str], name: str) -> str | None:
    """``{name}_FILE``'s content if that is set (the file wins: it is the container secret), else ``{name}``;
    None when neither is set. Errors name the variable and the path, never the content."""
    path = env.get(f"{name}_FILE")
    if path:
        try:
            # Only the trailing newline editors add: spaces may be part of the password.
            return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigurationError(f"cannot read {name}_FILE ({path}): {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigurationError(f"{name}_FILE ({path}) is not UTF-8 text") from None
    return env.get(name) or None


def _database_url(env: Mapping[str, str]) -> str:
    url = env.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    password = _read_secret(env, "DATABASE_PASSWORD")
    if password is None:
        return url
    path = env.get("DATABASE_PASSWORD_FILE")
    if path and not password:
        # An empty secret is a deployment mistake; connecting without a password would only move the
        # error to a less obvious "password authentication failed" at the first query.
        raise ConfigurationError(f"DATABASE_PASSWORD_FILE ({path}) is empty")
    return add_database_password(url, password, "DATABASE_PASSWORD_FILE" if path else "DATABASE_PASSWORD")


def _redis_url(env: Mapping[str, str]) -> str:
    url = env.get("REDIS_URL")
    if url and env.get("REDIS_SENTINELS"):
        raise ConfigurationError("REDIS_URL names one server: with REDIS_SENTINELS use REDIS_PASSWORD and REDIS_DB")
    if url:
        if urlsplit(url).scheme not in ("redis", "rediss"):
            raise ConfigurationError("REDIS_URL must start with redis:// or rediss://")
        return url
    try:
        port, db = int(env.get("REDIS_PORT", "6379")), int(env.get("REDIS_DB", "0"))
    except ValueError:
        raise ConfigurationError("REDIS_PORT and REDIS_DB must be integers") from None
    return build_redis_url(env.get("REDIS_HOST", "localhost"), port, db, _read_secret(env, "REDIS_PASSWORD"))


def _sentinel(env: Mapping[str, str]) -> SentinelSettings | None:
    password = _read_secret(env, "REDIS_SENTINEL_PASSWORD")
    try:
        return sentinel_settings(env.get("REDIS_SENTINELS"), env.get("REDIS_SENTINEL_MASTER"), password)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, not {raw!r}") from None


# The environment variable of each numeric setting; its default is the Settings field's own.
_NUMBERS = {
    "http_connect_timeout": "MESSAGEBIRD_CONNECT_TIMEOUT",
    "http_read_timeout": "MESSAGEBIRD_READ_TIMEOUT",
    "max_in_flight": "MAX_IN_FLIGHT",
    "worker_concurrency": "WORKER_CONCURRENCY",
    "shard_count": "SHARD_COUNT",
    "max_batches_per_tenant": "MAX_BATCHES_PER_TENANT",
    "send_rate_per_second": "SEND_RATE_PER_SECOND",
    "tenant_rate_per_second": "TENANT_RATE_PER_SECOND",
    "rate_wait_max_seconds": "RATE_WAIT_MAX_SECONDS",
    "send_max_attempts": "SEND_MAX_ATTEMPTS",
    "retry_base_seconds": "SEND_RETRY_BASE_SECONDS",
    "retry_cap_seconds": "SEND_RETRY_CAP_SECONDS",
    "send_batch_size": "SEND_BATCH_SIZE",
    "stale_sending_seconds": "STALE_SENDING_SECONDS",
    "recovery_interval_seconds": "RECOVERY_INTERVAL_SECONDS",
    "record_retry_seconds": "RECORD_RETRY_SECONDS",
    "alert_window_seconds": "ALERT_WINDOW_SECONDS",
    "requeue_after_seconds": "REQUEUE_AFTER_SECONDS",
    "beat_lock_timeout": "BEAT_LOCK_TIMEOUT",
    "beat_max_interval": "BEAT_MAX_INTERVAL",
    "broker_connection_max_retries": "BROKER_CONNECTION_MAX_RETRIES",
    "ledger_retention_days": "LEDGER_RETENTION_DAYS",
    "api_port": "API_PORT",
    "api_rate_per_second": "API_RATE_PER_SECOND",
    "api_rate_burst": "API_RATE_BURST",
    "metrics_port": "METRICS_PORT",
}


def _numbers(env: Mapping[str, str]) -> dict[str, Any]:
    """The numeric settings given in ``env``, each as its field's type; absent ones keep the default."""
    values: dict[str, Any] = {}
    for name, variable in _NUMBERS.items():
        default = Settings.__dataclass_fields__[name].default
        value = _number(env, variable, float(default))  # type: ignore[arg-type]
        values[name] = int(value) if isinstance(default, int) else value
    return values


def _admin_keys(env: Mapping[str, str]) -> tuple[str, ...]:
    """``ADMIN_API_KEYS_FILE``'s content (the container secret) or ``ADMIN_API_KEYS``: keys separated
    by commas or new lines, blanks ignored."""
    text = _read_secret(env, "ADMIN_API_KEYS") or ""
    return tuple(key.strip() for key in re.split(r"[,\n]", text) if key.strip())


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Resolve settings from ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    return Settings(
        redis_url=_redis_url(env),
        redis_sentinel=_sentinel(env),
        database_url=_database_url(env),
        sms_backend=env.get("SMS_BACKEND", "console"),
        messagebird_access_key=env.get("MESSAGEBIRD_ACCESS_KEY", ""),
        messagebird_endpoint=env.get("MESSAGEBIRD_ENDPOINT", MESSAGEBIRD_REST_ENDPOINT),
        sentry_dsn=env.get("SENTRY_DSN", ""),
        sentry_environment=env.get("SENTRY_ENVIRONMENT", env.get("TENANT_WORKER_ENV", "development")),
        environment=env.get("TENANT_WORKER_ENV", "development"),
        public_base_url=env.get("PUBLIC_BASE_URL", "").strip().rstrip("/"),
        messagebird_signing_key=_read_secret(env, "MESSAGEBIRD_SIGNING_KEY") or "",
        # STOP_KEYWORDS: comma-separated; unset or empty keeps the defaults.
        stop_keywords=tuple(w.strip() for w in env.get("STOP_KEYWORDS", "").split(",") if w.strip())
        or DEFAULT_STOP_KEYWORDS,
        api_host=env.get("API_HOST") or "127.0.0.1",
        metrics_host=env.get("METRICS_HOST") or "127.0.0.1",
        metrics_dir=env.get("PROMETHEUS_MULTIPROC_DIR", ""),
        heartbeat_file=env.get("HEARTBEAT_FILE") or DEFAULT_HEARTBEAT_FILE,
        admin_api_keys=_admin_keys(env),
        **_numbers(env),
    )
