"""The monitor_config of each Sentry Crons monitor matches what beat schedules, with nothing running."""

from __future__ import annotations

import pytest
from celery.schedules import crontab, schedule

from tenant_worker.adapters import sentry, sentry_crons
from tenant_worker.celery_app import create_app
from tenant_worker.config import load_settings


@pytest.mark.parametrize(
    ("beat", "expected"),
    [
        (1.0, {"type": "interval", "value": 1, "unit": "minute"}),
        (30.0, {"type": "interval", "value": 1, "unit": "minute"}),
        (60.0, {"type": "interval", "value": 1, "unit": "minute"}),
        (90.0, {"type": "interval", "value": 2, "unit": "minute"}),
        (schedule(900.0), {"type": "interval", "value": 15, "unit": "minute"}),
        (crontab(hour=3, minute=15), {"type": "crontab", "value": "15 3 * * *"}),
        (crontab(minute="*/5", day_of_week="mon-fri"), {"type": "crontab", "value": "*/5 * * * mon-fri"}),
    ],
)
def test_a_beat_schedule_becomes_the_monitor_schedule(beat: object, expected: dict[str, object]) -> None:
    assert sentry_crons.schedule_config(beat) == expected


def test_the_monitors_follow_the_app_beat_schedule_and_are_few() -> None:
    beat = create_app(load_settings({"RECOVERY_INTERVAL_SECONDS": "45"})).conf.beat_schedule
    recover = sentry_crons.monitor_config(sentry_crons.RECOVER, beat["recover"]["schedule"])
    assert recover["schedule"] == {"type": "interval", "value": 1, "unit": "minute"}
    sync = sentry_crons.monitor_config(sentry_crons.SYNC_SCHEDULES, beat["sync-schedules"]["schedule"])
    assert sync["schedule"] == {"type": "interval", "value": 15, "unit": "minute"}
    for config in (recover, sync):
        assert {"checkin_margin", "max_runtime", "failure_issue_threshold", "timezone"} <= set(config)
    assert len({monitor.slug for monitor in sentry_crons.MONITORS}) == 3, "never one monitor per tenant"


def test_without_sentry_a_monitored_run_just_runs() -> None:
    assert not sentry.enabled()
    ran = []
    with sentry_crons.checked_in(sentry_crons.RECOVER, 30.0):
        ran.append(1)
    assert ran == [1]
    with pytest.raises(ValueError), sentry_crons.checked_in(sentry_crons.RECOVER, 30.0):
        raise ValueError("the body's error goes on")
