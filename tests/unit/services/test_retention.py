"""Ledger retention on fakes: batches until nothing is left or the time is up, a dry run that deletes
nothing, a retention too short refused, and the setting that turns the daily task on and off."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections.abc import Callable

import pytest

from tenant_worker.celery_app import create_app
from tenant_worker.cli import build_parser
from tenant_worker.config import ConfigurationError, load_settings
from tenant_worker.domain.records import Tenant
from tenant_worker.services.retention import MIN_RETENTION_DAYS, count_prunable, prune_ledger
from tests.fakes import FakeClock, FakeStorage
from tests.unit.services.conftest import NewTenant, Sweep, due_customers, make_settings

YEAR = dt.timedelta(days=365)
RetentionSetup = Callable[[int], tuple[Tenant, list[int]]]


@pytest.fixture
def last_year(storage: FakeStorage, new_tenant: NewTenant, swept: Sweep, clock: FakeClock) -> RetentionSetup:
    """``count`` customers reminded (sent) a year ago who have renewed since: their rows are a past cycle."""

    def make(count: int) -> tuple[Tenant, list[int]]:
        tenant = new_tenant()
        records = due_customers(count, days_left=3)
        storage.add_customers(tenant, records)
        ids = swept(tenant)
        storage.update_reminders(ids, status="sent", sent_at=clock.now())
        clock.advance(YEAR)
        storage.add_customers(tenant, [dataclasses.replace(r, expires_on=r.expires_on + YEAR) for r in records])
        return tenant, ids

    return make


def test_batches_run_until_nothing_prunable_is_left(
    storage: FakeStorage, clock: FakeClock, last_year: RetentionSetup
) -> None:
    tenant, _ = last_year(7)
    report = prune_ledger(storage, MIN_RETENTION_DAYS, clock.now(), batch_size=3)
    assert (report.deleted, report.batches, report.complete) == (7, 3, True)
    assert report.cutoff == clock.now() - dt.timedelta(days=MIN_RETENTION_DAYS)
    assert storage.reminders(tenant) == []
    again = prune_ledger(storage, MIN_RETENTION_DAYS, clock.now(), batch_size=3)
    assert (again.deleted, again.batches, again.complete) == (0, 1, True)


def test_rows_younger_than_the_retention_and_of_the_current_expiry_stay(
    storage: FakeStorage, clock: FakeClock, last_year: RetentionSetup, swept: Sweep
) -> None:
    tenant, _ = last_year(2)
    clock.advance(dt.timedelta(days=1))
    current = swept(tenant)  # the renewed expiry's reminders, claimed today
    storage.update_reminders(current, status="sent")
    assert prune_ledger(storage, 400, clock.now()).deleted == 0  # last year's rows are 366 days old
    assert prune_ledger(storage, 365, clock.now()).deleted == 2
    assert sorted(r.id for r in storage.reminders(tenant)) == sorted(current)
    clock.advance(3 * YEAR)
    assert prune_ledger(storage, MIN_RETENTION_DAYS, clock.now()).deleted == 0  # the current expiry, forever


def test_a_run_stops_after_its_time_and_says_more_remain(
    storage: FakeStorage, clock: FakeClock, last_year: RetentionSetup
) -> None:
    last_year(10)
    ticks = itertools.count(0.0, 1.0)  # every batch takes a second
    report = prune_ledger(
        storage, MIN_RETENTION_DAYS, clock.now(), batch_size=2, max_seconds=3, monotonic=lambda: next(ticks)
    )
    assert (report.deleted, report.batches, report.complete) == (6, 3, False)
    rest = prune_ledger(storage, MIN_RETENTION_DAYS, clock.now(), batch_size=2)
    assert (rest.deleted, rest.complete) == (4, True)


def test_a_dry_run_counts_and_deletes_nothing(
    storage: FakeStorage, clock: FakeClock, last_year: RetentionSetup
) -> None:
    tenant, ids = last_year(4)
    report = count_prunable(storage, MIN_RETENTION_DAYS, clock.now())
    assert (report.deleted, report.dry_run, report.as_dict()["cutoff"]) == (4, True, report.cutoff.isoformat())
    assert len(storage.reminders(tenant)) == len(ids)


@pytest.mark.parametrize("days", [0, 30, MIN_RETENTION_DAYS - 1])
def test_a_retention_that_may_reach_a_current_window_is_refused(
    storage: FakeStorage, clock: FakeClock, days: int
) -> None:
    with pytest.raises(ValueError, match=f"at least {MIN_RETENTION_DAYS} days"):
        prune_ledger(storage, days, clock.now())
    with pytest.raises(ValueError, match=f"at least {MIN_RETENTION_DAYS} days"):
        count_prunable(storage, days, clock.now())


def test_the_command_refuses_a_short_retention_before_connecting(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["ledger", "prune", "--older-than", "30"])
    assert exit_info.value.code == 2
    assert f"at least {MIN_RETENTION_DAYS} days" in capsys.readouterr().err
    args = build_parser().parse_args(["ledger", "prune", "--older-than", "400", "--dry-run", "--json"])
    assert (args.older_than, args.dry_run, args.json) == (400, True, True)


def test_the_setting_turns_the_daily_prune_on_and_off() -> None:
    assert load_settings({}).ledger_retention_days == 400
    assert "prune-ledger" in create_app(load_settings({})).conf.beat_schedule
    assert "prune-ledger" not in create_app(load_settings({"LEDGER_RETENTION_DAYS": "0"})).conf.beat_schedule
    with pytest.raises(ConfigurationError, match="LEDGER_RETENTION_DAYS"):
        load_settings({"LEDGER_RETENTION_DAYS": "30"})


def test_the_daily_task_prunes_with_the_setting_and_does_nothing_when_it_is_off(
    storage: FakeStorage, clock: FakeClock, last_year: RetentionSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tenant_worker import tasks
    from tenant_worker.bootstrap import bootstrap

    tenant, _ = last_year(3)
    clock.advance(dt.timedelta(days=40))  # the rows are 405 days old
    off = bootstrap(make_settings(ledger_retention_days=0), uow=storage, clock=clock)
    monkeypatch.setattr(tasks, "_process", [off])
    assert tasks.prune_ledger() == {"skipped": "LEDGER_RETENTION_DAYS=0"}
    on = bootstrap(make_settings(ledger_retention_days=400), uow=storage, clock=clock)
    monkeypatch.setattr(tasks, "_process", [on])
    report = tasks.prune_ledger()
    assert (report["deleted"], report["complete"]) == (3, True)
    assert storage.reminders(tenant) == []
