"""The schedule store's contract, on the fake and on RedBeat in a real password-protected Redis."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from tenant_worker import constants
from tenant_worker.adapters.redbeat import RedBeatStore
from tenant_worker.celery_app import create_app
from tenant_worker.config import Settings
from tenant_worker.domain.localtime import next_local_run
from tenant_worker.domain.ports import ScheduleStore
from tests.conftest import redis_db_url, unique_slug
from tests.fakes import FakeScheduleStore

SCHEDULE_DB = 27  # a Redis database no other test uses (the test server has 32)
TEN = dt.time(10)


@dataclass
class Subject:
    """A schedule store and a way to see the sweeps it published on a queue: (task name, args)."""

    store: ScheduleStore
    published: Callable[[str], list[tuple[str, list[Any]]]]


@pytest.fixture(params=["fake", "redbeat"])
def subject(request: pytest.FixtureRequest) -> Iterator[Subject]:
    if request.param == "fake":
        fake = FakeScheduleStore()
        yield Subject(
            fake, lambda queue: [(constants.TASK_SWEEP_TENANT, [slug]) for slug, q, _ in fake.published if q == queue]
        )
        return
    url = redis_db_url(request.getfixturevalue("redis_url"), SCHEDULE_DB)
    client = redis.Redis.from_url(url)
    yield Subject(RedBeatStore(create_app(Settings(redis_url=url))), lambda queue: queued_tasks(client, queue))
    client.close()


def queued_tasks(client: redis.Redis, queue: str) -> list[tuple[str, list[Any]]]:
    """(task name, args) of the Celery messages waiting in a Redis queue, oldest first."""
    messages = [json.loads(raw) for raw in reversed(client.lrange(queue, 0, -1))]
    return [(m["headers"]["task"], json.loads(base64.b64decode(m["body"]))[0]) for m in messages]


def test_a_new_entry_counts_as_run_now_and_is_due_at_the_next_send_time(subject: Subject) -> None:
    slug, now = unique_slug("s"), dt.datetime.now(dt.UTC)
    subject.store.put(slug, "Europe/Berlin", TEN, "reminders.shard.03", True, now)
    entry = subject.store.get(slug)
    assert entry is not None
    assert (entry.slug, entry.timezone, entry.send_time, entry.queue, entry.enabled) == (
        slug,
        "Europe/Berlin",
        TEN,
        "reminders.shard.03",
        True,
    )
    assert entry.last_run_at == now
    assert entry.due_at == next_local_run(now, "Europe/Berlin", TEN)
    assert subject.store.get(unique_slug("s")) is None


def test_an_update_keeps_the_last_run_and_a_paused_entry_is_never_due(subject: Subject) -> None:
    slug, now = unique_slug("s"), dt.datetime.now(dt.UTC)
    store = subject.store
    store.put(slug, "Europe/Berlin", TEN, "reminders.shard.03", True, now)
    later = now + dt.timedelta(minutes=5)
    store.put(slug, "Asia/Tokyo", dt.time(7, 45), "reminders.tenant.big", True, later)
    moved = store.get(slug)
    assert moved is not None
    assert (moved.timezone, moved.send_time, moved.queue, moved.last_run_at) == (
        "Asia/Tokyo",
        dt.time(7, 45),
        "reminders.tenant.big",
        now,
    )
    assert moved.due_at == next_local_run(now, "Asia/Tokyo", dt.time(7, 45))
    store.put(slug, "Asia/Tokyo", dt.time(7, 45), "reminders.tenant.big", False, later)
    paused = store.get(slug)
    assert paused is not None
    assert (paused.enabled, paused.due_at, paused.last_run_at) == (False, None, now)
    store.put(slug, "Asia/Tokyo", dt.time(7, 45), "reminders.tenant.big", True, later)
    resumed = store.get(slug)
    assert resumed is not None and resumed.due_at == moved.due_at


def test_entries_are_listed_by_slug_and_deleted_once(subject: Subject) -> None:
    store, now = subject.store, dt.datetime.now(dt.UTC)
    slugs = [unique_slug("s"), unique_slug("s")]
    for slug in slugs:
        store.put(slug, "Europe/Amsterdam", TEN, "reminders.shard.01", True, now)
    listed = store.all()
    assert {slug: listed[slug] for slug in slugs} == {slug: store.get(slug) for slug in slugs}
    assert store.delete(slugs[0]) is True
    assert store.delete(slugs[0]) is False
    assert store.get(slugs[0]) is None
    assert slugs[0] not in store.all() and slugs[1] in store.all()


def test_a_sweep_published_now_goes_to_the_queue_given(subject: Subject) -> None:
    slug = unique_slug("s")
    queue = f"reminders.tenant.{slug}"
    first, second = subject.store.publish_sweep(slug, queue), subject.store.publish_sweep(slug, queue)
    assert first and second and first != second
    assert subject.published(queue) == [(constants.TASK_SWEEP_TENANT, [slug])] * 2
