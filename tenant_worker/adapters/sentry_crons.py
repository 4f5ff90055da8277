"""Sentry Crons check-ins for the few scheduled fan-out tasks, so that Sentry notices what did not run.

Error events tell an operator what went wrong; nothing tells them that beat stopped, that no worker
consumes the control queue, or that the recovery tick hangs. A Crons monitor does: each monitored run
checks in ``in_progress`` then ``ok`` (or ``error`` when it raises), and every check-in carries the
``monitor_config`` (the beat schedule, a margin, a maximum runtime, a failure threshold), so Sentry
creates or updates the monitor itself and marks a check-in *missed* when none arrives within
schedule + margin. Sentry decides "missed" server-side; nothing here has to run for that.

Only the static beat entries are monitored (recovery tick, schedule sync, ledger prune): never one
monitor per tenant sweep, because Sentry bills per monitor and 10,000 tenants would be 10,000 monitors.
For the same reason :class:`~sentry_sdk.integrations.celery.CeleryIntegration` keeps
``monitor_beat_tasks`` off: it would make a monitor of every RedBeat entry, tenant sweeps included.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from celery.schedules import crontab, schedule
from sentry_sdk.crons import MonitorStatus, capture_checkin

from tenant_worker.adapters import sentry

if TYPE_CHECKING:
    from sentry_sdk._types import MonitorConfig

# Sentry Crons accepts intervals in whole minutes; shorter beat intervals are monitored per minute.
_MINUTE = 60.0


@dataclass(frozen=True)
class CronMonitor:
    """One monitored beat entry: its Sentry slug and what Sentry needs to judge its check-ins.

    ``checkin_margin`` and ``max_runtime`` are in minutes, as Sentry counts them;
    ``failure_issue_threshold`` is how many failed or missed check-ins in a row open an issue, so a
    single Redis hiccup does not page anyone. ``min_gap`` (seconds) keeps a tick that runs more often
    than once a minute from spending Sentry's per-monitor check-in rate limit: a successful run that
    starts sooner than that after the previous check-in of this process is not reported.
    """

    slug: str
    checkin_margin: int
    max_runtime: int
    failure_issue_threshold: int
    min_gap: float = 0.0


RECOVER = CronMonitor("tenant-worker-recover", checkin_margin=2, max_runtime=5, failure_issue_threshold=3, min_gap=50)
SYNC_SCHEDULES = CronMonitor("tenant-worker-sync-schedules", checkin_margin=5, max_runtime=5, failure_issue_threshold=2)
PRUNE_LEDGER = CronMonitor("tenant-worker-prune-ledger", checkin_margin=30, max_runtime=5, failure_issue_threshold=1)
MONITORS = (RECOVER, SYNC_SCHEDULES, PRUNE_LEDGER)

_last_checkin: dict[str, float] = {}
_last_lock = threading.Lock()


def schedule_config(beat_schedule: Any) -> dict[str, Any]:
    """The ``schedule`` of a monitor_config equal to a beat entry's Celery schedule.

    A crontab keeps its five fields; an interval becomes whole minutes (rounded up), and an interval
    under a minute is checked once a minute (see ``min_gap``)."""
    if isinstance(beat_schedule, crontab):
        fields = (
            beat_schedule._orig_minute,
            beat_schedule._orig_hour,
            beat_schedule._orig_day_of_month,
            beat_schedule._orig_month_of_year,
            beat_schedule._orig_day_of_week,
        )
        return {"type": "crontab", "value": " ".join(str(field) for field in fields)}
    seconds = beat_schedule.seconds if isinstance(beat_schedule, schedule) else float(beat_schedule)
    return {"type": "interval", "value": max(1, -int(-seconds // _MINUTE)), "unit": "minute"}


def monitor_config(monitor: CronMonitor, beat_schedule: Any, timezone: str = "UTC") -> MonitorConfig:
    """The full monitor_config sent with every check-in: Sentry upserts the monitor from it."""
    return {
        "schedule": schedule_config(beat_schedule),  # type: ignore[typeddict-item]
        "timezone": timezone,
        "checkin_margin": monitor.checkin_margin,
        "max_runtime": monitor.max_runtime,
        "failure_issue_threshold": monitor.failure_issue_threshold,
        "recovery_threshold": 1,
    }


@contextmanager
def checked_in(monitor: CronMonitor, beat_schedule: Any, timezone: str = "UTC") -> Iterator[None]:
    """Run the body between an ``in_progress`` and an ``ok`` check-in, or ``error`` if it raises.

    Does nothing when Sentry is off. A run skipped by ``min_gap`` still reports ``error`` if it raises,
    so a failing tick is never hidden by the throttle."""
    if not sentry.enabled():
        yield
        return
    config = monitor_config(monitor, beat_schedule, timezone)
    started = time.monotonic()
    with _last_lock:
        due = started - _last_checkin.get(monitor.slug, float("-inf")) >= monitor.min_gap
        if due:
            _last_checkin[monitor.slug] = started
    check_in_id = None
    if due:
        check_in_id = capture_checkin(monitor.slug, status=MonitorStatus.IN_PROGRESS, monitor_config=config)
    try:
        yield
    except BaseException:
        capture_checkin(
            monitor.slug, check_in_id, MonitorStatus.ERROR, time.monotonic() - started, monitor_config=config
        )
        raise
    if due:
        capture_checkin(monitor.slug, check_in_id, MonitorStatus.OK, time.monotonic() - started, monitor_config=config)


def forget_checkins() -> None:
    """Forget when each monitor last checked in (a new process, or a test, starts afresh)."""
    with _last_lock:
        _last_checkin.clear()
