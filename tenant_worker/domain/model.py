"""Domain values: tenants, reminder statuses and the messages exchanged with an SMS gateway.

Plain dataclasses and enums with their validation, so the rules about what a tenant may look like live
in one place and are testable without a database.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import zoneinfo
from dataclasses import dataclass, field, replace

from tenant_worker.domain.localtime import SendingWindow, format_hhmm
from tenant_worker.domain.sms_limits import DEFAULT_MAX_SEGMENTS, MAX_SEGMENTS_LIMIT
from tenant_worker.domain.windows import DEFAULT_WINDOWS, normalize_windows

# The tenant's daily sweep runs at this local time unless it chooses another.
DEFAULT_SEND_TIME = dt.time(10, 0)
# "shard": the tenant shares sharded send queues; "dedicated": it gets queues of its own.
SLUG_PATTERN = re.compile(r"[a-z0-9-]{2,63}")
LOCALE_PATTERN = re.compile(r"[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*")
ALPHANUMERIC_ORIGINATOR = re.compile(r"[A-Za-z0-9]{1,11}")
NUMERIC_ORIGINATOR = re.compile(r"\+?[1-9][0-9]{6,14}")
# How {expires_on} is written: CLDR's date formats, e.g. nl 05-03-2027, 5 mrt 2027, 5 maart 2027.
DATE_STYLES = ("short", "medium", "long")
DEFAULT_DATE_STYLE = "long"


class ValidationError(ValueError):
    """User input is invalid; ``problems`` lists every reason so one run reports them all."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class TenantStatus(enum.StrEnum):
    """Whether a tenant's sweeps run."""

    ACTIVE = "active"
    PAUSED = "paused"


class SubscriptionStatus(enum.StrEnum):
    """Only active subscriptions are reminded; the others get a visible ``skipped`` ledger row."""

    ACTIVE = "active"
    CANCELLED = "cancelled"
    SUSPENDED = "suspended"


class ReminderStatus(enum.StrEnum):
    """Lifecycle of one ledger row; ``unknown`` means the gateway may or may not have sent it."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNKNOWN = "unknown"


class SkipReason(enum.StrEnum):
    """Why a due reminder was deliberately not sent (recorded so the decision is visible)."""

    SUBSCRIPTION_INACTIVE = "subscription_inactive"
    OPTED_OUT = "opted_out"
    INVALID_PHONE = "invalid_phone"
    EXPIRED = "expired_before_send"
    # The rendered SMS needs more segments than the tenant's max_segments (decided at send time, alerted).
    TOO_LONG = "too_long"
    # The customer or subscription was taken away (`customers remove`, `customers erase`, a full sync).
    REMOVED = "removed"


@dataclass(frozen=True)
class TenantSpec:
    """What an operator supplies to create a tenant."""

    slug: str
    name: str
    timezone: str
    originator: str
    locale: str = "en"
    windows: tuple[int, ...] = DEFAULT_WINDOWS
    status: TenantStatus = TenantStatus.ACTIVE
    send_time: dt.time = DEFAULT_SEND_TIME
    sending_window: SendingWindow = field(default_factory=SendingWindow)
    # Large tenants get their own queue (and pool) instead of a shared shard.
    dedicated: bool = False
    rate_per_second: float | None = None
    # Cap on SMS segments per reminder, checked when a template is saved and when an SMS is rendered.
    max_segments: int = DEFAULT_MAX_SEGMENTS
    date_style: str = DEFAULT_DATE_STYLE
    # Normalise the tenant's own text to GSM-7 too (formatted values always are): domain.gsm_text.
    normalize_text: bool = False

    def validated(self) -> TenantSpec:
        """Return a normalised copy, or raise :class:`ValidationError` listing every problem."""
        problems: list[str] = []
        if not SLUG_PATTERN.fullmatch(self.slug):
            problems.append(f"slug {self.slug!r} must be 2-63 characters of a-z, 0-9 and '-'")
        if not self.name.strip():
            problems.append("name must not be empty")
        if not is_valid_timezone(self.timezone):
            problems.append(f"time zone {self.timezone!r} is not an IANA time zone (e.g. Europe/Amsterdam)")
        if not LOCALE_PATTERN.fullmatch(self.locale):
            problems.append(f"locale {self.locale!r} must look like 'en' or 'nl-NL'")
        if not is_valid_originator(self.originator):
            problems.append(
                f"originator {self.originator!r} must be 1-11 letters/digits or an E.164 number like +31612345678"
            )
        if self.rate_per_second is not None and not self.rate_per_second > 0:
            problems.append(f"rate {self.rate_per_second} must be a positive number of SMS per second")
        if not 1 <= self.max_segments <= MAX_SEGMENTS_LIMIT:
            problems.append(f"max segments {self.max_segments} must be a whole number from 1 to {MAX_SEGMENTS_LIMIT}")
        if self.date_style not in DATE_STYLES:
            problems.append(f"date style {self.date_style!r} must be one of {', '.join(DATE_STYLES)}")
        windows = self.windows
        try:
            windows = normalize_windows(self.windows)
        except ValueError as exc:
            problems.append(str(exc))
        if not self.sending_window.contains(self.send_time):
            problems.append(
                f"send time {format_hhmm(self.send_time)} is outside the sending window {self.sending_window}: "
                "its reminders would wait for the window every day"
            )
        if problems:
            raise ValidationError(problems)
        return replace(self, name=self.name.strip(), windows=windows)


def is_valid_timezone(name: str) -> bool:
    """True for IANA zone names; rejects file paths and empty strings that ZoneInfo would mis-handle."""
    if not name or name.startswith("/") or ".." in name:
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def is_valid_originator(originator: str) -> bool:
    """MessageBird accepts up to 11 alphanumerics or a phone number as the sender."""
    if originator.isdigit() or originator.startswith("+"):
        return bool(NUMERIC_ORIGINATOR.fullmatch(originator))
    return bool(ALPHANUMERIC_ORIGINATOR.fullmatch(originator))


@dataclass(frozen=True)
class OutboundSms:
    """One SMS ready for a gateway; ``reference`` is the reminder id, echoed back by the provider."""

    reference: str
    originator: str
    recipient: str
    body: str
    encoding: str = "GSM-7"


class OutcomeKind(enum.StrEnum):
    """How a send attempt ended, as the ledger needs to know it."""

    SENT = "sent"
    FAILED = "failed"  # the provider refused this message for good (422): do not retry
    RETRY = "retry"  # nothing was sent (429, 5xx, connection refused): try again later
    UNKNOWN = "unknown"  # the request went out but no answer came back: never resend automatically
    # The provider refused our credentials (401/403): an account problem, not the message's. Nothing
    # was sent; the reminder waits (pending) until the key works again (the gateway circuit breaker).
    REJECTED_KEY = "rejected_key"
    # Nothing was sent because a part of ours was unavailable before the request could start (the rate
    # limiter's Redis, the database that records the start): not the message's fault, so the attempt
    # does not count; the reminder waits unpublished for the recovery tick.
    DEFERRED = "deferred"


class AccessCheck(enum.StrEnum):
    """What a cheap authenticated call to the provider said about the access key."""

    OK = "ok"
    REJECTED = "rejected"  # 401/403: wrong or revoked key
    UNREACHABLE = "unreachable"  # no answer: says nothing about the key


@dataclass(frozen=True)
class SendOutcome:
    """Result of one send; ``error`` is safe to store and log (no phone number, no body)."""

    kind: OutcomeKind
    provider_id: str | None = None
    error: str | None = None
