"""Sentry error reporting, initialised lazily in worker processes and scrubbed of personal data.

Only bad endings are reported (reminders that end ``failed`` or ``unknown``, or are skipped as too
long, and the gateway pausing on a rejected key), tagged with the tenant; transient errors that will be
retried are not events. One incident is one Sentry issue per (tenant, status, reason) — the
fingerprint — and at most one event per ``ALERT_WINDOW_SECONDS`` carrying the count of reminders
since the previous one: a crash that leaves 10,000 reminders ``unknown`` is one event, not 10,000.
Events never carry phone numbers, customer names or SMS bodies: the report itself holds only ids and
the error text, local variables are not captured, log records do not become events, and
:func:`scrub_event` removes anything that looks like a phone number as a last line of defence.
Every event and check-in carries the release (``tenant-worker@<package version>``) and the
environment (``SENTRY_ENVIRONMENT``), so an issue says which deployment and which build it came from.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

import redis
import sentry_sdk
from redis.exceptions import RedisError
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.logging import LoggingIntegration

from tenant_worker import __version__
from tenant_worker.config import Settings
from tenant_worker.constants import ALERT_KEY_PREFIX, ALERTS_WAITING_KEY

# 8 to 15 digits, optionally separated by single spaces or hyphens, as a whole word: E.164 and most
# written phone numbers; ISO dates (YYYY-MM-DD) are left alone.
_PHONE = re.compile(r"(?<![\w.-])(?!\d{4}-\d\d-\d\d(?!\d))\+?\d(?:[ -]?\d){7,14}(?![\w.-])")
_lock = threading.Lock()
_initialised_dsn: str | None = None
# Not sentry-sdk's default (SENTRY_RELEASE, else the git commit of the working directory): the package
# version is what `tenant-worker --version` prints and what a deployment runs.
RELEASE = f"tenant-worker@{__version__}"


def init_sentry(settings: Settings) -> bool:
    """Initialise the SDK once per process when ``SENTRY_DSN`` is set; returns whether it is on."""
    global _initialised_dsn
    if not settings.sentry_dsn:
        return False
    with _lock:
        if _initialised_dsn == settings.sentry_dsn:
            return True
        sentry_sdk.init(
            dsn=settings.sentry_dsn,
            environment=settings.sentry_environment,
            release=RELEASE,
            # No PII by default: sentry-sdk 2.75 deprecates saying so with ``send_default_pii=False``
            # (it warned on every init) and treats it as unset, which is the same; ``data_collection``
            # would also turn off its own scrubber, which ``scrub_event`` does not replace but adds to.
            include_local_variables=False,
            max_request_body_size="never",
            before_send=scrub_event,
            before_breadcrumb=_scrub_breadcrumb,
            # monitor_beat_tasks stays off: it would make a Crons monitor of every RedBeat entry, one per
            # tenant sweep; the few monitored tasks check in themselves (adapters/sentry_crons.py).
            integrations=[CeleryIntegration(monitor_beat_tasks=False), LoggingIntegration(event_level=None)],
        )
        _initialised_dsn = settings.sentry_dsn
    return True


def enabled() -> bool:
    """Whether this process reports to Sentry."""
    return _initialised_dsn is not None


def shutdown(timeout: float = 5.0) -> None:
    """Deliver what is queued and stop reporting (tests that pointed this process at a recorder)."""
    global _initialised_dsn
    with _lock:
        if _initialised_dsn is not None:
            sentry_sdk.flush(timeout=timeout)
            sentry_sdk.get_client().close()
            sentry_sdk.get_global_scope().set_client(None)
        _initialised_dsn = None


class SentryAlerts:
    """The :class:`~tenant_worker.domain.ports.AlertSink` of worker processes.

    Per (tenant, status, reason) a Redis gate (``SET NX EX window``) lets the first report of a window
    become an event and counts the others (``INCRBY``); :meth:`flush_due`, run by the recovery tick,
    reports what was counted once the window has passed, so no count is lost and an incident that
    goes on produces one event per window. Without Redis every report is an event.
    """

    def __init__(self, client: redis.Redis | None, window_seconds: int) -> None:
        self.client = client
        self.window = window_seconds

    def reminders_ended(
        self, tenant_slug: str, status: str, reason: str, reminder_ids: Sequence[int], error: str | None
    ) -> None:
        """Count the reminders; send an event if this incident has none in the current window."""
        if _initialised_dsn is None or not reminder_ids:
            return
        key = f"{ALERT_KEY_PREFIX}{tenant_slug}:{status}:{reason}"
        count = len(reminder_ids)
        if self.client is not None:
            try:
                pipe = self.client.pipeline()
                pipe.incrby(f"{key}:count", count)
                pipe.set(f"{key}:error", error or "", ex=self.window * 4)
                pipe.set(f"{key}:gate", 1, nx=True, ex=self.window)
                pipe.sadd(ALERTS_WAITING_KEY, key)
                _, _, opened, _ = pipe.execute()
                if not opened:
                    return  # counted: the next event of this incident, or flush_due, reports it
                count = self._take(key) or count
            except RedisError:
                pass
        _capture(tenant_slug, status, reason, count, list(reminder_ids[:10]), error)

    def flush_due(self) -> int:
        """Report the counts whose window has passed; returns how many events were sent. Reads only
        the incidents with a count waiting (a set), never the keyspace."""
        if _initialised_dsn is None or self.client is None:
            return 0
        sent = 0
        for raw in self.client.smembers(ALERTS_WAITING_KEY):
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            if self.client.exists(f"{key}:gate"):
                continue  # the window is still open: its next event or a later flush reports it
            count = self._take(key)
            if not count or not self.client.set(f"{key}:gate", 1, nx=True, ex=self.window):
                continue
            tenant_slug, status, reason = key.removeprefix(ALERT_KEY_PREFIX).rsplit(":", 2)
            error = self.client.get(f"{key}:error")
            _capture(tenant_slug, status, reason, count, [], error.decode() if isinstance(error, bytes) else None)
            sent += 1
        return sent

    def _take(self, key: str) -> int:
        """The incident's waiting count, taken (zeroed) atomically, and the incident off the waiting set."""
        assert self.client is not None
        pipe = self.client.pipeline()
        pipe.getdel(f"{key}:count")
        pipe.srem(ALERTS_WAITING_KEY, key)
        count, _ = pipe.execute()
        return int(count or 0)

    def gateway_paused(self, reason: str) -> None:
        """One event when the breaker opens (the breaker itself makes it once per incident)."""
        if _initialised_dsn is None:
            return
        with sentry_sdk.new_scope() as scope:
            scope.set_tag("alert", "gateway_paused")
            scope.fingerprint = ["gateway-paused"]
            sentry_sdk.capture_message(
                f"Sending paused for every tenant: {reason}. It resumes by itself once the key works.", level="error"
            )


def _capture(tenant_slug: str, status: str, reason: str, count: int, sample: list[int], error: str | None) -> None:
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("tenant", tenant_slug)
        scope.set_tag("reminder_status", status)
        scope.set_tag("reason", reason)
        scope.set_context("reminders", {"count": count, "sample_ids": sample, "error": error or ""})
        scope.fingerprint = ["reminders-ended", tenant_slug, status, reason]
        sentry_sdk.capture_message(
            f"{count} reminder(s) of {tenant_slug} ended {status} ({reason}): {error or 'no detail'}",
            level="warning" if status in ("unknown", "skipped") else "error",
        )


def flush(timeout: float = 5.0) -> None:
    """Deliver queued events (called when a worker process exits)."""
    if _initialised_dsn is not None:
        sentry_sdk.flush(timeout=timeout)


def scrub_event(event: Any, _hint: Any) -> Any:
    """Replace phone-number-like strings anywhere in the event."""
    return _scrub(event)


def _scrub_breadcrumb(crumb: Any, _hint: Any) -> Any:
    return _scrub(crumb)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _PHONE.sub("[phone]", value)
    if isinstance(value, dict):
        return {_scrub(key): _scrub(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    return value
