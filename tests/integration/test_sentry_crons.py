"""Sentry Crons check-ins of the monitored beat tasks, as sentry-sdk's transport delivers them.

The real task functions run in this process on real PostgreSQL and Redis (a database and a Redis
database of this module's own: the recovery tick acts on every tenant), with this process's Sentry
client pointed at a recorder of this module's own, so every check-in it holds is one these tests caused.
Sentry marks a check-in *missed* on its side, from the ``monitor_config`` every check-in carries; here
we show that config is sent, and that a task that does not run sends nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from tenant_worker import tasks
from tenant_worker.adapters import sentry, sentry_crons
from tenant_worker.bootstrap import bootstrap
from tenant_worker.config import Settings, load_settings
from tenant_worker_dev.emulators.sentry import SentryRecorder
from tests.conftest import own_database, redis_db_url, wait_until

CRONS_REDIS_DB = 18  # a Redis database no other test uses (the test server has 32)


@pytest.fixture(scope="module")
def crons_settings(worker_env: dict[str, str], redis_url: str) -> Iterator[tuple[Settings, SentryRecorder]]:
    with own_database("tw_crons") as url, SentryRecorder() as recorder:
        env = {**worker_env, "DATABASE_URL": url, "REDIS_URL": redis_db_url(redis_url, CRONS_REDIS_DB)}
        yield load_settings({**env, "SENTRY_DSN": recorder.dsn}), recorder


@pytest.fixture
def recorder(
    crons_settings: tuple[Settings, SentryRecorder], monkeypatch: pytest.MonkeyPatch
) -> Iterator[SentryRecorder]:
    """This process reports to the module's recorder while the test runs, on the module's services."""
    settings, recorder = crons_settings
    recorder.clear()
    sentry_crons.forget_checkins()
    monkeypatch.setattr(tasks, "_process", [bootstrap(settings, tasks.app)])
    assert sentry.init_sentry(settings)
    try:
        yield recorder
    finally:
        sentry.shutdown()
        sentry_crons.forget_checkins()


def statuses(recorder: SentryRecorder, monitor: sentry_crons.CronMonitor) -> list[str]:
    return [check_in["status"] for check_in in recorder.check_ins(monitor.slug)]


def finished(recorder: SentryRecorder, monitor: sentry_crons.CronMonitor) -> list[dict[str, Any]]:
    """Wait for the monitor's closing check-in (ok or error); returns all of its check-ins."""
    wait_until(lambda: {"ok", "error"} & set(statuses(recorder, monitor)), 10, f"the {monitor.slug} check-in")
    return recorder.check_ins(monitor.slug)


def recover_without_a_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the tick on a database that does not exist: its first query fails for real."""
    settings = tasks.services().settings
    missing = settings.database_url.rsplit("/", 1)[0] + "/tw_crons_no_such_database"
    monkeypatch.setattr(tasks, "_process", [bootstrap(dataclasses.replace(settings, database_url=missing), tasks.app)])
    with pytest.raises(Exception, match="database connection lost"):
        tasks.recover()


def test_the_recovery_tick_checks_in_progress_then_ok_with_its_schedule_release_and_environment(
    recorder: SentryRecorder, crons_settings: tuple[Settings, SentryRecorder]
) -> None:
    tasks.recover()
    started, ended = finished(recorder, sentry_crons.RECOVER)
    assert (started["status"], ended["status"]) == ("in_progress", "ok")
    assert started["check_in_id"] == ended["check_in_id"], "one run is one check-in, opened then closed"
    assert ended["duration"] >= 0
    assert ended["monitor_config"] == {
        "schedule": {"type": "interval", "value": 1, "unit": "minute"},  # the 30 s tick, per minute
        "timezone": "UTC",
        "checkin_margin": 2,
        "max_runtime": 5,
        "failure_issue_threshold": 3,
        "recovery_threshold": 1,
    }
    for check_in in (started, ended):
        assert check_in["release"] == sentry.RELEASE
        assert check_in["environment"] == crons_settings[0].sentry_environment


def test_a_run_that_raises_checks_in_error(recorder: SentryRecorder, monkeypatch: pytest.MonkeyPatch) -> None:
    recover_without_a_database(monkeypatch)
    assert [c["status"] for c in finished(recorder, sentry_crons.RECOVER)] == ["in_progress", "error"]


def test_a_tick_within_a_minute_of_the_last_check_in_is_not_reported_unless_it_fails(
    recorder: SentryRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks.recover()
    tasks.recover()  # the next 30 s tick: Sentry limits check-ins per monitor and minute
    tasks.prune_ledger()  # sent after the ticks by the same transport thread: they arrived before it
    finished(recorder, sentry_crons.PRUNE_LEDGER)
    assert statuses(recorder, sentry_crons.RECOVER) == ["in_progress", "ok"]

    recover_without_a_database(monkeypatch)
    wait_until(lambda: "error" in statuses(recorder, sentry_crons.RECOVER), 10, "the error check-in")
    assert statuses(recorder, sentry_crons.RECOVER) == ["in_progress", "ok", "error"]


def test_a_monitor_whose_task_does_not_run_gets_no_check_in_and_sentry_has_what_it_needs_to_mark_it_missed(
    recorder: SentryRecorder,
) -> None:
    # The schedule sync is stopped (it does not run); the daily prune runs.
    report = tasks.prune_ledger()
    assert report["complete"] is True
    started, ended = finished(recorder, sentry_crons.PRUNE_LEDGER)
    assert (started["status"], ended["status"]) == ("in_progress", "ok")
    assert ended["monitor_config"]["schedule"] == {"type": "crontab", "value": "15 3 * * *"}
    assert (ended["monitor_config"]["checkin_margin"], ended["monitor_config"]["timezone"]) == (30, "UTC")
    # Both check-ins went through the one transport thread, in order: none of the sync's is on its way.
    assert recorder.check_ins(sentry_crons.SYNC_SCHEDULES.slug) == []
    assert {c["monitor_slug"] for c in recorder.check_ins()} == {sentry_crons.PRUNE_LEDGER.slug}

    tasks.sync_schedules()
    started, ended = finished(recorder, sentry_crons.SYNC_SCHEDULES)
    assert ended["status"] == "ok"
    assert ended["monitor_config"]["schedule"] == {"type": "interval", "value": 15, "unit": "minute"}
    assert ended["monitor_config"]["checkin_margin"] == 5
