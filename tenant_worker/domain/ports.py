"""Interfaces the services depend on besides storage (``domain.storage``): the SMS gateway, the task
publisher, the schedule store, the clock, alerts and the shared breaker and rate limiter. Adapters
implement them (MessageBird, Celery, RedBeat, Redis, Sentry); the unit tests' fakes implement them too."""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from tenant_worker.domain.model import AccessCheck, OutboundSms, SendOutcome


class Clock(Protocol):
    """Time as the services see it: the wall clock for the ledger, a monotonic one for deadlines,
    and sleeping (a fake clock in unit tests advances instead of waiting)."""

    def now(self) -> dt.datetime:
        """The current instant, aware, in UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for deadlines."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (threads of a batch sleep until their rate-limit slot)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> dt.datetime:
        """``datetime.now(UTC)``."""
        return dt.datetime.now(dt.UTC)

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """``time.sleep``."""
        if seconds > 0:
            time.sleep(seconds)


SYSTEM_CLOCK = SystemClock()


class SmsGateway(Protocol):
    """Sends one SMS and classifies the result; must be safe to call from several threads at once."""

    def send(self, sms: OutboundSms) -> SendOutcome:
        """Send ``sms`` and say whether it was sent, refused, worth retrying, or of unknown fate."""
        ...

    def check_access(self) -> AccessCheck:
        """Make one cheap authenticated call (MessageBird: the balance) to test the access key."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class GatewayBreaker(Protocol):
    """A circuit breaker shared by every worker: open while the provider rejects the access key, so no
    worker keeps sending (and no reminder fails) on an account problem."""

    def is_open(self) -> bool:
        """Whether sending is paused."""
        ...

    def trip(self, reason: str) -> bool:
        """Open the breaker; True only for the call that opened it (it alone alerts)."""
        ...

    def reset(self) -> bool:
        """Close the breaker (a probe or a key check succeeded); True if it was open."""
        ...


class BrokerMarker(Protocol):
    """Notices that the broker lost its data (and so every queued task)."""

    def lost_since_last_check(self) -> bool:
        """True once after each loss (and on the first check ever)."""
        ...


class ReminderQueue(Protocol):
    """The task publisher: puts send work on the broker (Celery in production)."""

    def enqueue(
        self, tenant_id: int, reminder_ids: list[int], countdown: float = 0.0, queue: str | None = None
    ) -> None:
        """Schedule one send task for these reminders; raises :class:`EnqueueError` if the broker is down.
        ``queue`` is the tenant's queue when the caller has just read the tenant row (a sweep); without
        it the task is routed by the tenant's cached route."""
        ...


class SendThrottle(Protocol):
    """Shared send-rate limits (global provider limit, optional per-tenant rate)."""

    def reserve_batch(self, tenant_id: int, tenant_rate: float | None, count: int) -> list[float]:
        """Reserve send slots for up to ``count`` SMS of the tenant: for each slot granted, seconds to
        wait before sending it. A shorter list means the rest would wait too long: retry them later."""
        ...


class ThrottleUnavailable(RuntimeError):
    """The shared rate limiter cannot be asked (its Redis is down): nothing may be sent, as sending
    without it could exceed the provider's limit."""


class NoThrottle:
    """No rate limit (tests of sending logic, the console backend)."""

    def reserve_batch(self, tenant_id: int, tenant_rate: float | None, count: int) -> list[float]:
        """Every slot at once."""
        return [0.0] * count


class AlertSink(Protocol):
    """Alerts operators (Sentry) about reminders that ended badly (``failed``, ``unknown``, or skipped as
    too long), grouped per incident: one call per (tenant, status, reason) and batch, never per row."""

    def reminders_ended(
        self, tenant_slug: str, status: str, reason: str, reminder_ids: Sequence[int], error: str | None
    ) -> None:
        """Report that ``reminder_ids`` of one tenant ended ``status`` for ``reason`` (a short code)."""
        ...

    def gateway_paused(self, reason: str) -> None:
        """Report once that sending is paused for every tenant (the breaker opened)."""
        ...

    def flush_due(self) -> int:
        """Report what a per-incident window held back once it has passed (the recovery tick calls
        it); returns how many reports were sent."""
        ...


class NoAlerts:
    """Alerts go nowhere (no ``SENTRY_DSN``, the CLI, unit tests)."""

    def reminders_ended(
        self, tenant_slug: str, status: str, reason: str, reminder_ids: Sequence[int], error: str | None
    ) -> None:
        """Drop the report."""

    def gateway_paused(self, reason: str) -> None:
        """Drop the report."""

    def flush_due(self) -> int:
        """Nothing is held back."""
        return 0


class EnqueueError(RuntimeError):
    """The broker did not accept the task; the ledger keeps the reminders ``pending``."""


@dataclass(frozen=True)
class StoredSchedule:
    """What the beat store (RedBeat) holds for one tenant's daily sweep."""

    slug: str
    timezone: str
    send_time: dt.time
    queue: str | None
    enabled: bool
    last_run_at: dt.datetime | None
    due_at: dt.datetime | None  # when beat will next send it; None while paused (not in the due set)


class ScheduleStore(Protocol):
    """Where beat finds tenants' daily sweeps (RedBeat in production)."""

    def put(self, slug: str, timezone: str, send_time: dt.time, queue: str, enabled: bool, now: dt.datetime) -> None:
        """Create or update a tenant's entry, keeping its last run."""
        ...

    def get(self, slug: str) -> StoredSchedule | None:
        """One tenant's entry, or None."""
        ...

    def all(self) -> dict[str, StoredSchedule]:
        """Every tenant entry by slug."""
        ...

    def delete(self, slug: str) -> bool:
        """Remove a tenant's entry entirely; True if it existed."""
        ...

    def publish_sweep(self, slug: str, queue: str) -> str:
        """Send the tenant's sweep task now; returns its id."""
        ...


@dataclass(frozen=True)
class SignedToken:
    """A webhook signature that checked out: its unique id and when it expires (UTC)."""

    token_id: str
    expires_at: dt.datetime


# Seconds a token id is remembered past its expiry: the validator's leeway (1 s) and clock skew.
REPLAY_MARGIN_SECONDS = 5


def replay_ttl(token: SignedToken, now: dt.datetime) -> int:
    """How long to remember ``token``'s id: until it could no longer pass the validator."""
    return max(1, math.ceil((token.expires_at - now).total_seconds()) + REPLAY_MARGIN_SECONDS)


class WebhookRejected(Exception):
    """A webhook request is not provably MessageBird's: no signature, a forged, expired or replayed one.
    The message says which (never the token or the key)."""


class WebhookUnavailable(RuntimeError):
    """A webhook cannot be checked now: no signing key or public URL configured, or the replay store
    (Redis) is down. Answered 503 so MessageBird delivers the request again later."""


class WebhookVerifier(Protocol):
    """Checks MessageBird's ``MessageBird-Signature-JWT`` against the URL it called and the body."""

    def verify(self, signature: str | None, path: str, raw_query: str, body: bytes) -> SignedToken:
        """The token's id and expiry if ``signature`` signs this request; else :class:`WebhookRejected`."""
        ...


class ReplayGuard(Protocol):
    """Remembers the ids of tokens already used, shared by every API process; several at once, as the
    status reports of concurrent requests are checked together."""

    def first_use(self, tokens: Sequence[SignedToken], now: dt.datetime) -> list[bool]:
        """Remember each token's id until a little after it expires; for each, False if its id was
        seen before (a replay), also earlier in ``tokens``. ``WebhookUnavailable`` if it cannot tell."""
        ...

    def forget(self, tokens: Sequence[SignedToken]) -> None:
        """Forget these tokens (their requests failed on our side: MessageBird may deliver them again)."""
        ...
