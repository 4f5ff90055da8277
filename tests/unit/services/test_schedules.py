"""Tenants' daily sweep schedules (``services.schedules.ScheduleService``) on the in-memory fakes: the
tenants table says what each entry should be, the fake beat store holds it, and every next run is
given in UTC and in the tenant's local time, DST included."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from tenant_worker import constants
from tenant_worker.domain.localtime import SendingWindow
from tenant_worker.domain.model import TenantStatus, ValidationError
from tenant_worker.domain.records import Tenant
from tenant_worker.services.schedules import ScheduleService, SyncReport
from tests.fakes import FakeClock, FakeScheduleStore, FakeStorage

# Saturday 2026-03-28 12:00 UTC: Amsterdam (CET, +01:00) moves to summer time the next night.
NOW = dt.datetime(2026, 3, 28, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def storage() -> FakeStorage:
    return FakeStorage()


@pytest.fixture
def store() -> FakeScheduleStore:
    return FakeScheduleStore()


@pytest.fixture
def service(storage: FakeStorage, store: FakeScheduleStore) -> ScheduleService:
    return ScheduleService(storage, store)


def tenant_in_db(storage: FakeStorage, slug: str) -> Tenant:
    with storage() as tx:
        return tx.catalog.find_tenant(slug)


def change_tenant(storage: FakeStorage, slug: str, **changes: Any) -> Tenant:
    """Change the tenant's row directly, as another command (or an operator) would."""
    with storage() as tx:
        tenant = dataclasses.replace(tx.catalog.find_tenant(slug), **changes)
        tx.catalog.save_tenant(tenant)
    return tenant


def entry_fields(store: FakeScheduleStore, slug: str) -> tuple[Any, ...]:
    entry = store.get(slug)
    assert entry is not None, f"no schedule entry for {slug}"
    return entry.timezone, entry.send_time, entry.queue, entry.enabled


# apply and sync ----------------------------------------------------------------------------------------


def test_apply_creates_a_missing_entry_on_the_tenants_queue_and_then_leaves_it_alone(storage, store, service) -> None:
    tenant = storage.add_tenant("acme", send_time=dt.time(10))

    assert service.apply(tenant, NOW) == "created"
    assert entry_fields(store, "acme") == ("Europe/Amsterdam", dt.time(10), tenant.queue, True)
    assert store.get("acme").due_at == dt.datetime(2026, 3, 29, 8, 0, tzinfo=dt.UTC)

    assert service.apply(tenant, NOW + dt.timedelta(hours=1)) == "unchanged"
    assert store.get("acme").last_run_at == NOW


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"send_time": dt.time(7, 45)}, id="send-time"),
        pytest.param({"timezone": "America/New_York"}, id="time-zone"),
        pytest.param({"queue": "reminders.tenant.acme"}, id="queue-after-a-move"),
    ],
)
def test_apply_updates_an_entry_that_no_longer_matches_the_tenant(storage, store, service, changes) -> None:
    service.apply(storage.add_tenant("acme"), NOW)
    tenant = change_tenant(storage, "acme", **changes)

    assert service.apply(tenant, NOW) == "updated"

    assert entry_fields(store, "acme") == (tenant.timezone, tenant.send_time, tenant.queue, True)
    assert store.get("acme").last_run_at == NOW


def test_a_paused_tenants_entry_is_kept_but_out_of_the_due_set(storage, store, service) -> None:
    service.apply(storage.add_tenant("acme"), NOW)
    tenant = change_tenant(storage, "acme", status=TenantStatus.PAUSED.value)

    assert service.apply(tenant, NOW) == "updated"

    entry = store.get("acme")
    assert (entry.enabled, entry.due_at, entry.last_run_at) == (False, None, NOW)


def test_apply_removes_the_entry_of_a_tenant_whose_schedule_was_removed_on_purpose(storage, store, service) -> None:
    service.apply(storage.add_tenant("acme"), NOW)
    tenant = change_tenant(storage, "acme", scheduled=False)

    assert service.apply(tenant, NOW) == "removed"
    assert service.apply(tenant, NOW) == "unchanged"
    assert store.all() == {}


def test_sync_creates_missing_entries_fixes_drifted_ones_and_removes_orphans(storage, store, service) -> None:
    for slug in ("a-missing", "b-drifted", "c-in-sync", "d-removed", "e-never"):
        service.apply(storage.add_tenant(slug), NOW)
    store.delete("a-missing")
    change_tenant(storage, "b-drifted", send_time=dt.time(8, 15))
    change_tenant(storage, "d-removed", scheduled=False)  # its entry is still in the store
    change_tenant(storage, "e-never", scheduled=False)
    store.delete("e-never")
    store.put("ghost", "Europe/Amsterdam", dt.time(10), "reminders.shard.00", True, NOW)  # no such tenant

    report = service.sync(NOW)

    assert report == SyncReport(
        created=["a-missing"], updated=["b-drifted"], removed=["d-removed", "ghost"], unchanged=2
    )
    assert sorted(store.all()) == ["a-missing", "b-drifted", "c-in-sync"]
    assert store.get("b-drifted").send_time == dt.time(8, 15)
    assert service.sync(NOW) == SyncReport(unchanged=5)


def test_sync_points_a_moved_tenants_entry_at_its_new_queue(storage, store, service) -> None:
    service.apply(storage.add_tenant("acme"), NOW)
    change_tenant(storage, "acme", queue="reminders.tenant.acme")

    assert service.sync(NOW).updated == ["acme"]
    assert store.get("acme").queue == "reminders.tenant.acme"


# describe, show, list_all, upcoming --------------------------------------------------------------------


def test_show_gives_the_next_and_last_run_in_utc_and_local_time_across_a_dst_change(storage, store, service) -> None:
    service.apply(storage.add_tenant("acme", send_time=dt.time(10)), NOW)
    queue = tenant_in_db(storage, "acme").queue

    assert service.show("acme") == {
        "tenant": "acme",
        "timezone": "Europe/Amsterdam",
        "send_time": "10:00",
        "sending_window": "00:00-00:00",
        "windows": [5, 3, 1],
        "state": "active",
        "queue": queue,
        "next_run_utc": "2026-03-29T08:00:00+00:00",
        "next_run_local": "2026-03-29T10:00:00+02:00",
        "last_run_utc": "2026-03-28T12:00:00+00:00",
        "last_run_local": "2026-03-28T13:00:00+01:00",
        "in_sync": True,
    }

    store.ran("acme", dt.datetime(2026, 3, 29, 8, 0, tzinfo=dt.UTC))  # beat sends Sunday's sweep

    shown = service.show("acme")
    assert (shown["last_run_local"], shown["next_run_utc"], shown["next_run_local"]) == (
        "2026-03-29T10:00:00+02:00",
        "2026-03-30T08:00:00+00:00",
        "2026-03-30T10:00:00+02:00",
    )


def test_show_says_when_the_entry_disagrees_with_the_tenant(storage, store, service) -> None:
    tenant = storage.add_tenant("acme", send_time=dt.time(10))
    store.put("acme", tenant.timezone, dt.time(11), tenant.queue, True, NOW)

    assert service.show("acme")["in_sync"] is False


def test_show_of_a_paused_a_removed_and_a_missing_schedule(storage, store, service) -> None:
    for slug in ("paused", "removed", "missing"):
        service.apply(storage.add_tenant(slug), NOW)
    service.apply(change_tenant(storage, "paused", status=TenantStatus.PAUSED.value), NOW)
    service.apply(change_tenant(storage, "removed", scheduled=False), NOW)
    store.delete("missing")

    shown = {slug: service.show(slug) for slug in ("paused", "removed", "missing")}

    summary = {slug: (s["state"], s["next_run_utc"], s["queue"] is not None, s["in_sync"]) for slug, s in shown.items()}
    assert summary == {
        "paused": ("paused", None, True, True),
        "removed": ("removed", None, False, True),
        "missing": ("active", None, False, False),
    }
    assert shown["paused"]["last_run_utc"] == NOW.isoformat()


def test_list_all_shows_every_tenants_schedule_by_slug(storage, store, service) -> None:
    service.apply(storage.add_tenant("zulu", timezone="Pacific/Auckland"), NOW)
    service.apply(storage.add_tenant("alpha", timezone="America/New_York"), NOW)
    storage.add_tenant("mike")  # never scheduled: beat has no entry for it yet

    listed = service.list_all()

    assert [(s["tenant"], s["timezone"], s["in_sync"]) for s in listed] == [
        ("alpha", "America/New_York", True),
        ("mike", "Europe/Amsterdam", False),
        ("zulu", "Pacific/Auckland", True),
    ]
    assert listed[2]["next_run_local"] == "2026-03-29T10:00:00+13:00"


@pytest.mark.parametrize(
    ("timezone", "send_time", "start", "expected"),
    [
        pytest.param(
            "Europe/Amsterdam",
            dt.time(10),
            dt.datetime(2026, 3, 27, 12, 0, tzinfo=dt.UTC),
            [
                ("2026-03-28T09:00:00+00:00", "2026-03-28T10:00:00+01:00"),
                ("2026-03-29T08:00:00+00:00", "2026-03-29T10:00:00+02:00"),
                ("2026-03-30T08:00:00+00:00", "2026-03-30T10:00:00+02:00"),
            ],
            id="spring-forward-same-local-time",
        ),
        pytest.param(
            "America/New_York",
            dt.time(9),
            dt.datetime(2026, 10, 31, 8, 0),  # noqa: DTZ001 - naive on purpose: New York wall time
            [
                ("2026-10-31T13:00:00+00:00", "2026-10-31T09:00:00-04:00"),
                ("2026-11-01T14:00:00+00:00", "2026-11-01T09:00:00-05:00"),
                ("2026-11-02T14:00:00+00:00", "2026-11-02T09:00:00-05:00"),
            ],
            id="fall-back-from-a-naive-local-start",
        ),
        pytest.param(
            "Europe/Amsterdam",
            dt.time(2, 30),
            dt.datetime(2026, 3, 28, 12, 0, tzinfo=dt.UTC),
            [
                ("2026-03-29T01:00:00+00:00", "2026-03-29T03:00:00+02:00"),
                ("2026-03-30T00:30:00+00:00", "2026-03-30T02:30:00+02:00"),
            ],
            id="a-time-in-the-skipped-hour-runs-once-after-the-jump",
        ),
        pytest.param(
            "Europe/Amsterdam",
            dt.time(2, 30),
            dt.datetime(2026, 10, 24, 12, 0, tzinfo=dt.UTC),
            [
                ("2026-10-25T00:30:00+00:00", "2026-10-25T02:30:00+02:00"),
                ("2026-10-26T01:30:00+00:00", "2026-10-26T02:30:00+01:00"),
            ],
            id="a-time-that-occurs-twice-runs-once-at-the-first",
        ),
    ],
)
def test_upcoming_runs_keep_the_local_send_time_across_dst_changes(
    storage, service, timezone: str, send_time: dt.time, start: dt.datetime, expected: list[tuple[str, str]]
) -> None:
    storage.add_tenant("acme", timezone=timezone, send_time=send_time)

    runs = service.upcoming("acme", start, len(expected))

    assert [(run["utc"], run["local"]) for run in runs] == expected


# set_time, pause, resume, remove, run_now --------------------------------------------------------------


def test_set_time_changes_the_tenant_and_its_entry_and_shows_the_result(storage, store, service) -> None:
    service.apply(storage.add_tenant("acme"), NOW)

    shown = service.set_time("acme", dt.time(7, 15), "America/New_York")

    tenant = tenant_in_db(storage, "acme")
    assert (tenant.send_time, tenant.timezone) == (dt.time(7, 15), "America/New_York")
    assert entry_fields(store, "acme") == ("America/New_York", dt.time(7, 15), tenant.queue, True)
    assert (shown["send_time"], shown["timezone"], shown["in_sync"]) == ("07:15", "America/New_York", True)
    assert shown["next_run_local"].endswith(("T07:15:00-05:00", "T07:15:00-04:00"))


def test_set_time_without_a_zone_keeps_the_tenants_zone(storage, store, service) -> None:
    service.apply(storage.add_tenant("acme", timezone="Asia/Kolkata"), NOW)

    service.set_time("acme", dt.time(18, 0))

    assert entry_fields(store, "acme")[:2] == ("Asia/Kolkata", dt.time(18, 0))


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "CET+1", "/etc/localtime", ""])
def test_set_time_with_an_invalid_zone_is_a_validation_error_and_changes_nothing(
    storage, store, service, zone: str
) -> None:
    service.apply(storage.add_tenant("acme"), NOW)
    tenant, entry = tenant_in_db(storage, "acme"), store.get("acme")

    with pytest.raises(ValidationError, match="is not an IANA time zone"):
        service.set_time("acme", dt.time(7, 15), zone)

    assert (tenant_in_db(storage, "acme"), store.get("acme")) == (tenant, entry)


def test_set_time_brings_back_a_removed_schedule(storage, store, service) -> None:
    service.apply(storage.add_tenant("acme"), NOW)
    service.remove("acme")

    shown = service.set_time("acme", dt.time(9, 0))

    assert (shown["state"], shown["in_sync"]) == ("active", True)
    assert tenant_in_db(storage, "acme").scheduled


def test_pause_stops_the_sweeps_and_keeps_the_entry_and_its_last_run(storage, store, service) -> None:
    service.apply(storage.add_tenant("acme"), NOW)

    shown = service.pause("acme")

    assert (shown["state"], shown["next_run_utc"], shown["last_run_utc"]) == ("paused", None, NOW.isoformat())
    assert tenant_in_db(storage, "acme").status == TenantStatus.PAUSED
    assert store.get("acme").enabled is False


def test_resume_puts_a_paused_tenant_back_in_the_due_set(storage, store, service) -> None:
    service.apply(storage.add_tenant("acme"), NOW)
    service.pause("acme")

    shown = service.resume("acme")

    assert (shown["state"], shown["in_sync"]) == ("active", True)
    assert shown["next_run_utc"] is not None
    assert tenant_in_db(storage, "acme").status == TenantStatus.ACTIVE


def test_remove_deletes_the_entry_and_sync_does_not_bring_it_back(storage, store, service) -> None:
    service.apply(storage.add_tenant("acme"), NOW)

    shown = service.remove("acme")

    assert (shown["state"], shown["queue"], shown["in_sync"]) == ("removed", None, True)
    assert store.all() == {}
    assert service.sync(NOW) == SyncReport(unchanged=1)
    assert store.all() == {}
    assert service.resume("acme")["state"] == "active"
    assert "acme" in store.all()


def test_run_now_publishes_the_sweep_on_the_tenants_current_queue(storage, store, service) -> None:
    shard_tenant = storage.add_tenant("small")
    storage.add_tenant("big", dedicated=True)
    service.apply(storage.add_tenant("moved"), NOW)
    change_tenant(storage, "moved", queue="reminders.tenant.moved")  # the entry still names the old queue

    task_ids = [service.run_now(slug) for slug in ("small", "big", "moved")]

    assert store.published == [
        ("small", shard_tenant.queue, task_ids[0]),
        ("big", constants.DEDICATED_QUEUE_PREFIX + "big", task_ids[1]),
        ("moved", "reminders.tenant.moved", task_ids[2]),
    ]
    assert len(set(task_ids)) == 3


@pytest.mark.parametrize("action", ["show", "pause", "resume", "remove", "run_now"])
def test_an_unknown_tenant_is_a_clear_error_and_nothing_is_published(store, service, action: str) -> None:
    with pytest.raises(ValidationError, match="unknown tenant 'nobody'"):
        getattr(service, action)("nobody")

    assert (store.all(), store.published) == ({}, [])


# update (the HTTP API's PUT) -----------------------------------------------------------------------------


def test_update_changes_time_zone_windows_and_sending_window_together_and_moves_the_entry(store, storage) -> None:
    service = ScheduleService(storage, store, FakeClock(NOW))
    service.apply(storage.add_tenant("acme", send_time=dt.time(10)), NOW)

    office_hours = SendingWindow(dt.time(9), dt.time(18))
    shown = service.update("acme", dt.time(9, 30), "America/New_York", (1, 7, 3), office_hours)

    tenant = tenant_in_db(storage, "acme")
    assert (tenant.send_time, tenant.timezone) == (dt.time(9, 30), "America/New_York")
    assert tenant.ordered_windows == (7, 3, 1)
    assert (tenant.window_start, tenant.window_end) == (dt.time(9), dt.time(18))
    assert entry_fields(store, "acme")[:2] == ("America/New_York", dt.time(9, 30))
    assert (shown["windows"], shown["sending_window"], shown["send_time"]) == ([7, 3, 1], "09:00-18:00", "09:30")
    assert shown["next_run_local"] == "2026-03-28T09:30:00-04:00"  # New York is on summer time already


def test_update_refuses_every_problem_at_once_and_changes_nothing(store, storage) -> None:
    service = ScheduleService(storage, store, FakeClock(NOW))
    before = storage.add_tenant("acme", send_time=dt.time(10))

    with pytest.raises(ValidationError) as refused:
        service.update("acme", dt.time(22), "Mars/Olympus", (0,), SendingWindow(dt.time(8), dt.time(21)))

    assert [problem.split(" ")[0:2] for problem in refused.value.problems] == [
        ["time", "zone"],
        ["reminder", "windows"],
        ["send", "time"],
    ]
    assert tenant_in_db(storage, "acme") == before
    assert store.get("acme") is None
