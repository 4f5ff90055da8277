"""The schedule over HTTP on the real server, read back from the real RedBeat store the way beat reads
it: a change moves the entry's next run, pause takes it out of the due set, resume puts it back, and
run-now publishes the sweep."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from tenant_worker.adapters.redbeat import RedBeatStore, TenantLocalSchedule, TenantScheduleEntry
from tenant_worker.celery_app import create_app
from tenant_worker.config import load_settings
from tenant_worker.domain.localtime import next_local_run
from tests.integration.api.conftest import ApiServer, problem


@pytest.fixture(scope="module")
def beat_store(api_server: ApiServer) -> Iterator[RedBeatStore]:
    """RedBeat's store on the API server's Redis, as beat opens it."""
    app = create_app(load_settings(api_server.env))
    yield RedBeatStore(app)
    app.close()


def due_at(store: RedBeatStore, slug: str) -> dt.datetime | None:
    """When beat will fire the tenant's sweep: the entry's score in RedBeat's due set (None: not there)."""
    score = store.redis.zscore(store.conf.schedule_key, store.key(slug))
    return None if score is None else dt.datetime.fromtimestamp(score, dt.UTC)


def test_a_schedule_change_moves_the_next_run_beat_sees(api_server: ApiServer, beat_store: RedBeatStore) -> None:
    tenant = api_server.make_tenant()
    url = f"/v1/tenants/{tenant.slug}/schedule"
    with api_server.client(tenant.key) as client:
        client.post(f"{url}/resume")  # a tenant made without the API has no entry yet: this creates it
        before = client.get(url).json()
        changed = client.put(url, json={"send_time": "07:45", "timezone": "Asia/Kolkata", "windows": [7, 1],
                                        "sending_window": "07:00-20:00"})  # fmt: skip
    assert changed.status_code == 200, changed.text
    after = changed.json()
    assert (before["send_time"], before["timezone"]) == ("10:00", "Europe/Amsterdam") and before["next_run_utc"]
    assert (after["send_time"], after["timezone"], after["windows"], after["sending_window"]) == (
        "07:45", "Asia/Kolkata", [7, 1], "07:00-20:00",
    )  # fmt: skip
    assert after["next_run_local"].endswith("T07:45:00+05:30")
    next_run = dt.datetime.fromisoformat(after["next_run_utc"])
    assert due_at(beat_store, tenant.slug) == next_run != dt.datetime.fromisoformat(before["next_run_utc"])
    entry = TenantScheduleEntry.from_key(beat_store.key(tenant.slug), app=beat_store.app)
    assert isinstance(entry.schedule, TenantLocalSchedule)
    assert (entry.schedule.timezone, entry.schedule.send_time) == ("Asia/Kolkata", dt.time(7, 45))
    assert next_run == next_local_run(next_run - dt.timedelta(days=1), "Asia/Kolkata", dt.time(7, 45))


def test_an_invalid_change_names_every_problem_and_changes_nothing(api_server: ApiServer) -> None:
    tenant = api_server.make_tenant()
    url = f"/v1/tenants/{tenant.slug}/schedule"
    with api_server.client(tenant.key) as client:
        before = client.get(url).json()
        refused = problem(client.put(url, json={"send_time": "23:30", "timezone": "Mars/Olympus", "windows": [90],
                                                "sending_window": "08:00-21:00"}), 422)  # fmt: skip
        malformed = problem(client.put(url, json={"send_time": "9.30"}), 422)
        after = client.get(url).json()
    assert refused["detail"].split("; ") == [
        "time zone 'Mars/Olympus' is not an IANA time zone (e.g. Europe/Amsterdam)",
        "reminder windows must be whole days between 1 and 60",
        "send time 23:30 is outside the sending window 08:00-21:00: its reminders would wait for the window every day",
    ]
    assert malformed["detail"] == "'9.30' is not a time like 10:00 (24-hour HH:MM)"
    assert after == before


def test_pause_leaves_the_due_set_resume_returns_and_run_now_publishes_the_sweep(
    api_server: ApiServer, beat_store: RedBeatStore
) -> None:
    tenant = api_server.make_tenant()
    url = f"/v1/tenants/{tenant.slug}/schedule"
    queue_length = beat_store.redis.llen(tenant.tenant.queue)
    with api_server.client(tenant.key) as client:
        resumed = client.post(f"{url}/resume").json()
        paused = client.post(f"{url}/pause").json()
        assert due_at(beat_store, tenant.slug) is None
        refused = problem(client.post(f"{url}/run-now"), 409)
        again = client.post(f"{url}/resume").json()
        run = client.post(f"{url}/run-now")
    assert (paused["state"], paused["paused"], paused["next_run_utc"]) == ("paused", True, None)
    assert (again["state"], again["paused"], again["next_run_utc"]) == ("active", False, resumed["next_run_utc"])
    assert due_at(beat_store, tenant.slug) == dt.datetime.fromisoformat(again["next_run_utc"])
    assert refused["detail"] == "the tenant is paused: resume its schedule first"
    assert run.status_code == 202 and run.json()["task_id"]
    assert beat_store.redis.llen(tenant.tenant.queue) == queue_length + 1
