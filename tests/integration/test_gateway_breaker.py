"""One contract for the gateway circuit breaker, run against the Redis breaker every worker shares
(a real password-protected redis-server) and the in-memory fake unit tests use."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tenant_worker.adapters.redis_breaker import RedisGatewayBreaker
from tenant_worker.domain.ports import GatewayBreaker
from tests.conftest import free_port, redis_db_url
from tests.fakes import MemoryGatewayBreaker

# A Redis database no worker of the suite uses; the breaker key is global, so each test flushes it.
BREAKER_DB = 23  # a Redis database no other test uses (the test server has 32)
# redis-py retries a failed command with backoff by default; one attempt is enough to see the answer.
NO_RETRY = Retry(NoBackoff(), 0)


@pytest.fixture(params=["memory", "redis"])
def new_handle(request: pytest.FixtureRequest, redis_url: str) -> Iterator[Callable[[], GatewayBreaker]]:
    """Makes handles on one breaker: for Redis each with its own client, as separate workers have."""
    if request.param == "memory":
        shared = MemoryGatewayBreaker()
        yield lambda: shared
        return
    url = redis_db_url(redis_url, BREAKER_DB)
    clients = [redis.Redis.from_url(url)]
    clients[0].flushdb()

    def handle() -> GatewayBreaker:
        clients.append(redis.Redis.from_url(url))
        return RedisGatewayBreaker(clients[-1])

    yield handle
    clients[0].flushdb()
    for client in clients:
        client.close()


def test_a_new_breaker_is_closed_and_resetting_it_changes_nothing(new_handle: Callable[[], GatewayBreaker]) -> None:
    breaker = new_handle()
    assert not breaker.is_open()
    assert breaker.reset() is False
    assert not breaker.is_open()


def test_only_the_trip_that_opens_the_breaker_returns_true(new_handle: Callable[[], GatewayBreaker]) -> None:
    first, second = new_handle(), new_handle()
    assert first.trip("HTTP 401") is True
    assert second.trip("HTTP 401") is False
    assert first.trip("HTTP 403") is False
    assert first.is_open() and second.is_open()


def test_a_reset_closes_it_for_everyone_and_a_later_rejection_is_a_new_incident(
    new_handle: Callable[[], GatewayBreaker],
) -> None:
    worker, tick = new_handle(), new_handle()
    worker.trip("HTTP 401")
    assert tick.reset() is True
    assert not worker.is_open() and not tick.is_open()
    assert tick.reset() is False
    assert worker.trip("HTTP 401") is True


def test_of_many_workers_meeting_the_rejection_at_once_exactly_one_opens_it(
    new_handle: Callable[[], GatewayBreaker],
) -> None:
    handles = [new_handle() for _ in range(16)]
    start = threading.Barrier(len(handles))
    opened: list[bool] = []

    def trip(breaker: GatewayBreaker) -> None:
        start.wait()
        opened.append(breaker.trip("HTTP 401"))

    threads = [threading.Thread(target=trip, args=(handle,)) for handle in handles]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(opened) == [False] * 15 + [True]


def test_a_breaker_whose_redis_is_unreachable_reads_as_closed_and_opens_for_nobody() -> None:
    # Redis down: a batch Redis delivered may still try to send (and meets the rejection itself).
    client = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1, retry=NO_RETRY)
    breaker = RedisGatewayBreaker(client)
    assert breaker.is_open() is False
    assert breaker.trip("HTTP 401") is False
    assert breaker.reset() is False


def test_a_breaker_with_a_wrong_redis_password_reads_as_closed(redis_url: str) -> None:
    kwargs = redis.Redis.from_url(redis_db_url(redis_url, BREAKER_DB)).connection_pool.connection_kwargs
    client = redis.Redis(
        host=kwargs["host"], port=kwargs["port"], db=BREAKER_DB, password="not-the-password", retry=NO_RETRY
    )
    breaker = RedisGatewayBreaker(client)
    assert breaker.is_open() is False and breaker.trip("HTTP 401") is False
