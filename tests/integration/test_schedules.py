"""Tenant schedules in a real password-protected Redis, read back through RedBeat's own code."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from dataclasses import replace

import pytest

from tenant_worker import constants
from tenant_worker.adapters.redbeat import RedBeatStore, TenantLocalSchedule, TenantScheduleEntry, schedule_name
from tenant_worker.adapters.redbeat_scheduler import TenantRedBeatScheduler
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.celery_app import create_app
from tenant_worker.config import load_settings
from tenant_worker.domain.localtime import next_local_run
from tenant_worker.domain.model import ValidationError
from tenant_worker.services.schedules import ScheduleService
from tests.conftest import free_port

UTC = dt.UTC


@pytest.fixture(scope="module")
def app(settings):
    return create_app(settings)


@pytest.fixture(scope="module")
def store(app) -> RedBeatStore:
    return RedBeatStore(app)


@pytest.fixture
def service(sessions, store) -> ScheduleService:
    return ScheduleService(sql_unit_of_work(sessions), store)


def keys_of(store: RedBeatStore, slug: str) -> list[str]:
    """Every Redis key and sorted-set member that mentions the tenant."""
    keys = [k for k in store.redis.scan_iter(match=f"*{slug}*")]
    members = [m for m in store.redis.zrange(store.conf.schedule_key, 0, -1) if slug in m]
    return keys + members


def test_a_berlin_schedule_survives_redis_and_keeps_its_zone_across_dst(app, store, service, make_tenant):
    tenant = make_tenant("Europe/Berlin")
    assert service.apply(tenant) == "created"
    key = store.key(tenant.slug)
    raw = json.loads(store.redis.hget(key, "definition"))
    assert raw["schedule"] == {"__type__": "tenant_local", "timezone": "Europe/Berlin", "time": "10:00"}
    assert raw["options"] == {"queue": tenant.queue}
    assert tenant.queue.startswith("reminders.shard.")

    # Loaded the way RedBeat's scheduler loads it on every tick.
    entry = TenantScheduleEntry.from_key(key, app=app)
    assert isinstance(entry.schedule, TenantLocalSchedule)
    assert (entry.task, entry.args, entry.options["queue"]) == (
        constants.TASK_SWEEP_TENANT,
        [tenant.slug],
        tenant.queue,
    )
    before_change = dt.datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    entry.schedule.nowfun = lambda: before_change  # a clock the test controls
    assert entry.schedule.is_due(before_change - dt.timedelta(hours=1)).is_due is False
    after_change = entry.schedule.next_run(before_change)
    assert after_change.astimezone(zoneinfo.ZoneInfo("Europe/Berlin")).hour == 10
    assert after_change == dt.datetime(2026, 3, 29, 8, 0, tzinfo=UTC)

    # The score in RedBeat's sorted set is exactly the next local 10:00, so a tick loads it only then.
    score = store.redis.zscore(store.conf.schedule_key, key)
    expected = next_local_run(entry.last_run_at, "Europe/Berlin", dt.time(10))
    assert score == expected.timestamp()


@pytest.fixture(scope="module")
def quiet_app(settings):
    """An app on a Redis database no worker consumes, so published tasks can be inspected."""
    return create_app(replace(settings, redis_url=settings.redis_url.rsplit("/", 1)[0] + "/7"))


def published_sweeps(app, slug: str, queue: str = constants.CONTROL_QUEUE) -> list[dict]:
    """Sweep tasks for ``slug`` waiting in ``queue`` (Celery's Redis message format)."""
    client = RedBeatStore(app).redis
    messages = [json.loads(raw) for raw in client.lrange(queue, 0, -1)]
    return [
        m for m in messages
        if m["headers"]["task"] == constants.TASK_SWEEP_TENANT and slug in m["headers"]["argsrepr"]
    ]  # fmt: skip


def test_a_scheduler_tick_sends_a_due_entry_to_the_tenants_queue_once(quiet_app, make_tenant):
    tenant = make_tenant("Asia/Kolkata")
    store = RedBeatStore(quiet_app)
    store.put(tenant.slug, "Asia/Kolkata", dt.time(10), tenant.queue, True, dt.datetime.now(UTC))
    # Last run long ago: the entry is overdue now.
    meta = {"last_run_at": {"__type__": "datetime", "year": 2020, "month": 1, "day": 1, "hour": 0, "minute": 0,
                            "second": 0, "microsecond": 0, "timezone": "UTC"}}  # fmt: skip
    store.redis.hset(store.key(tenant.slug), "meta", json.dumps(meta))
    store.redis.zadd(store.conf.schedule_key, {store.key(tenant.slug): 0})

    scheduler = TenantRedBeatScheduler(app=quiet_app, lock_key=None, lazy=True)
    with quiet_app.producer_or_acquire() as producer:
        for entry in scheduler.schedule.values():
            scheduler.maybe_due(entry, producer=producer)
        assert len(published_sweeps(quiet_app, tenant.slug, tenant.queue)) == 1
        # It was advanced: the next tick finds it not due.
        for entry in scheduler.schedule.values():
            scheduler.maybe_due(entry, producer=producer)
    assert len(published_sweeps(quiet_app, tenant.slug, tenant.queue)) == 1
    after = store.get(tenant.slug)
    assert after.due_at > dt.datetime.now(UTC)
    assert after.due_at.astimezone(zoneinfo.ZoneInfo("Asia/Kolkata")).time() == dt.time(10)


def test_a_due_entry_whose_task_cannot_be_published_stays_due_and_is_sent_once_the_broker_answers(
    quiet_app, make_tenant
):
    tenant = make_tenant("UTC")
    store = RedBeatStore(quiet_app)
    store.put(tenant.slug, "UTC", dt.time(10), tenant.queue, True, dt.datetime(2020, 1, 1, tzinfo=UTC))
    store.redis.zadd(store.conf.schedule_key, {store.key(tenant.slug): 0})  # overdue
    before = store.get(tenant.slug)
    scheduler = TenantRedBeatScheduler(app=quiet_app, lock_key=None, lazy=True)
    gone = create_app(replace(load_settings({}), redis_url=f"redis://127.0.0.1:{free_port()}/0"))

    with gone.producer_or_acquire() as dead:  # the broker went away between reading and sending
        entry = scheduler.schedule[schedule_name(tenant.slug)]
        scheduler.maybe_due(entry, producer=dead)
    assert store.get(tenant.slug) == before, "not advanced: the run is not lost"
    assert published_sweeps(quiet_app, tenant.slug, tenant.queue) == []

    with quiet_app.producer_or_acquire() as producer:
        for entry in scheduler.schedule.values():
            scheduler.maybe_due(entry, producer=producer)
    assert len(published_sweeps(quiet_app, tenant.slug, tenant.queue)) == 1
    assert store.get(tenant.slug).last_run_at > before.last_run_at


def test_show_gives_next_and_last_run_in_utc_and_local_time(service, make_tenant):
    tenant = make_tenant("Australia/Adelaide")
    service.apply(tenant)
    shown = service.show(tenant.slug)
    assert shown["state"] == "active" and shown["in_sync"]
    nxt = dt.datetime.fromisoformat(shown["next_run_local"])
    assert (nxt.hour, nxt.minute) == (10, 0)
    assert dt.datetime.fromisoformat(shown["next_run_utc"]) == nxt
    assert shown["last_run_utc"] is not None


def test_upcoming_runs_cross_a_dst_change_at_the_same_local_time(service, make_tenant):
    tenant = make_tenant("America/Santiago")
    runs = service.upcoming(tenant.slug, dt.datetime(2026, 4, 3, 14, 0, tzinfo=UTC), 3)
    assert [r["local"] for r in runs] == [
        "2026-04-04T10:00:00-03:00",
        "2026-04-05T10:00:00-04:00",
        "2026-04-06T10:00:00-04:00",
    ]


def test_set_changes_the_time_and_zone_in_database_and_redis(service, store, make_tenant):
    tenant = make_tenant("Europe/Amsterdam")
    service.apply(tenant)
    shown = service.set_time(tenant.slug, dt.time(9, 30), "Asia/Kolkata")
    stored = store.get(tenant.slug)
    assert (stored.timezone, stored.send_time) == ("Asia/Kolkata", dt.time(9, 30))
    assert shown["next_run_local"].endswith("+05:30") and "T09:30" in shown["next_run_local"]
    with pytest.raises(ValidationError, match="IANA"):
        service.set_time(tenant.slug, dt.time(9), "Mars/Olympus")


def test_pause_keeps_the_entry_out_of_the_due_set_and_resume_brings_it_back(service, store, make_tenant):
    tenant = make_tenant()
    service.apply(tenant)
    paused = service.pause(tenant.slug)
    stored = store.get(tenant.slug)
    assert paused["state"] == "paused" and paused["next_run_utc"] is None
    assert stored is not None and not stored.enabled and stored.due_at is None
    assert service.resume(tenant.slug)["state"] == "active"
    assert store.get(tenant.slug).due_at is not None


def test_remove_leaves_no_key_behind_and_sync_does_not_recreate_it(service, store, make_tenant):
    tenant = make_tenant()
    service.apply(tenant)
    assert keys_of(store, tenant.slug)
    assert service.remove(tenant.slug)["state"] == "removed"
    assert keys_of(store, tenant.slug) == []
    service.sync()
    assert keys_of(store, tenant.slug) == []


def test_sync_creates_missing_fixes_drift_and_removes_orphans(service, store, make_tenant):
    missing, drifted = make_tenant(), make_tenant()
    service.apply(drifted)
    store.put(drifted.slug, "UTC", dt.time(3), constants.CONTROL_QUEUE, True, dt.datetime.now(UTC))
    store.put("orphan-" + missing.slug, "UTC", dt.time(3), constants.CONTROL_QUEUE, True, dt.datetime.now(UTC))
    report = service.sync()
    assert missing.slug in report.created and drifted.slug in report.updated
    assert "orphan-" + missing.slug in report.removed
    assert store.get(drifted.slug).timezone == "Europe/Amsterdam"
    assert keys_of(store, "orphan-" + missing.slug) == []
    again = service.sync()
    assert missing.slug not in again.created + again.updated + again.removed


def test_run_now_publishes_the_sweep_to_the_tenants_queue(sessions, quiet_app, make_tenant):
    tenant = make_tenant()
    task_id = ScheduleService(sql_unit_of_work(sessions), RedBeatStore(quiet_app)).run_now(tenant.slug)
    assert published_sweeps(quiet_app, tenant.slug) == []
    [message] = published_sweeps(quiet_app, tenant.slug, tenant.queue)
    assert message["headers"]["id"] == task_id
