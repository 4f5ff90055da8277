"""Sentry error reporting, initialised lazily in worker processes and scrubbed of personal data.

Only final failures are reported (a reminder that ends ``failed`` or ``unknown``), tagged with the
tenant; transient errors that will be retried are not events. Events never carry phone numbers, customer
names or SMS bodies: the report itself holds only ids and the error text, local variables are not
captured, log records do not become events, and :func:`scrub_event` removes anything that looks like a
phone number as a last line of defence.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.logging import LoggingIntegration

from tenant_worker.config import Settings

# 8 to 15 digits, optionally separated by single spaces or hyphens, as a whole word: E.164 and most
# written phone numbers; ISO dates (YYYY-MM-DD) are left alone.
_PHONE = re.compile(r"(?<![\w.-])(?!\d{4}-\d\d-\d\d(?!\d))\+?\d(?:[ -]?\d){7,14}(?![\w.-])")
_lock = threading.Lock()
_initialised_dsn: str | None = None


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
            send_default_pii=False,
            include_local_variables=False,
            max_request_body_size="never",
            before_send=scrub_event,
            before_breadcrumb=_scrub_breadcrumb,
            integrations=[CeleryIntegration(), LoggingIntegration(event_level=None)],
        )
        _initialised_dsn = settings.sentry_dsn
    return True


def report_final_failure(tenant_slug: str, reminder_id: int, status: str, error: str | None) -> None:
    """One event per reminder that will not be sent automatically, tagged with its tenant."""
    if _initialised_dsn is None:
        return
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("tenant", tenant_slug)
        scope.set_tag("reminder_status", status)
        scope.set_context("reminder", {"id": reminder_id, "status": status, "error": error or ""})
        scope.fingerprint = ["reminder-final-failure", tenant_slug, status]
        sentry_sdk.capture_message(
            f"Reminder {reminder_id} {status}: {error or 'no detail'}",
            level="warning" if status == "unknown" else "error",
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
