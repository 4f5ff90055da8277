"""The task publisher and the broker-loss marker, on their fakes and on Celery/Redis (a real
password-protected redis-server; a dead broker is a port nothing listens on)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from tenant_worker import constants
from tenant_worker.adapters.celery_publisher import CeleryReminderQueue
from tenant_worker.adapters.redis_breaker import RedisBrokerMarker
from tenant_worker.celery_app import create_app
from tenant_worker.config import Settings, build_redis_url
from tenant_worker.domain.ports import BrokerMarker, EnqueueError, ReminderQueue
from tests.conftest import REDIS_PASSWORD, free_port, redis_db_url, unique_slug
from tests.contract.test_schedule_store import queued_tasks
from tests.fakes import FakeBrokerMarker, FakeQueue

PUBLISH_DB, MARKER_DB = 25, 26  # Redis databases no other test uses (the test server has 32)


@dataclass
class Publisher:
    """A task publisher, the tasks it put on a queue, and one whose broker is down."""

    queue: ReminderQueue
    published: Callable[[str], list[tuple[str, list[Any]]]]
    broken: ReminderQueue


@pytest.fixture(params=["fake", "celery"])
def publisher(request: pytest.FixtureRequest) -> Iterator[Publisher]:
    if request.param == "fake":
        fake, broken = FakeQueue(), FakeQueue()
        broken.fail()
        yield Publisher(
            fake,
            lambda queue: [
                (constants.TASK_SEND_REMINDERS, [t.tenant_id, t.reminder_ids]) for t in fake.tasks if t.queue == queue
            ],
            broken,
        )
        return
    url = redis_db_url(request.getfixturevalue("redis_url"), PUBLISH_DB)
    client = redis.Redis.from_url(url)
    dead = build_redis_url("127.0.0.1", free_port(), 0, REDIS_PASSWORD)
    yield Publisher(
        CeleryReminderQueue(create_app(Settings(redis_url=url))),
        lambda queue: queued_tasks(client, queue),
        CeleryReminderQueue(create_app(Settings(redis_url=dead))),
    )
    client.close()


def test_a_send_task_is_published_with_its_tenant_and_reminders(publisher: Publisher) -> None:
    queue = f"reminders.tenant.{unique_slug('q')}"
    publisher.queue.enqueue(7, [3, 1, 2], queue=queue)
    publisher.queue.enqueue(7, [4], countdown=0.5, queue=queue)
    assert publisher.published(queue) == [
        (constants.TASK_SEND_REMINDERS, [7, [3, 1, 2]]),
        (constants.TASK_SEND_REMINDERS, [7, [4]]),
    ]


def test_a_dead_broker_is_an_enqueue_error(publisher: Publisher) -> None:
    with pytest.raises(EnqueueError, match="unavailable"):
        publisher.broken.enqueue(7, [1], queue="reminders.shard.00")


@dataclass
class Marker:
    """A broker marker and what makes the broker lose its data."""

    marker: BrokerMarker
    lose_data: Callable[[], None]


@pytest.fixture(params=["fake", "redis"])
def marker(request: pytest.FixtureRequest) -> Iterator[Marker]:
    if request.param == "fake":
        fake = FakeBrokerMarker()
        yield Marker(fake, fake.lose)
        return
    client = redis.Redis.from_url(redis_db_url(request.getfixturevalue("redis_url"), MARKER_DB))

    def restart_without_data() -> None:
        client.flushdb()

    restart_without_data()
    yield Marker(RedisBrokerMarker(client), restart_without_data)
    client.close()


def test_the_first_check_and_the_first_after_each_loss_report_a_loss(marker: Marker) -> None:
    assert [marker.marker.lost_since_last_check() for _ in range(3)] == [True, False, False]
    marker.lose_data()
    assert [marker.marker.lost_since_last_check() for _ in range(2)] == [True, False]
