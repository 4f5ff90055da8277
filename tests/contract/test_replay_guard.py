"""The webhook replay store, in memory and on the password-protected Redis."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import pytest
import redis

from tenant_worker.adapters.messagebird_webhooks import RedisReplayGuard
from tenant_worker.domain.ports import ReplayGuard, SignedToken, WebhookUnavailable
from tests.fakes.replay import MemoryReplayGuard


@pytest.fixture(params=["memory", "redis"])
def guard(request: pytest.FixtureRequest) -> Iterator[ReplayGuard]:
    if request.param == "memory":
        yield MemoryReplayGuard()
        return
    client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
    yield RedisReplayGuard(client)
    client.close()


def token(validity: float = 60) -> SignedToken:
    return SignedToken(uuid.uuid4().hex, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=validity))


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def test_a_token_id_is_accepted_once(guard: ReplayGuard) -> None:
    first, second = token(), token()
    assert guard.first_use([first], now()) == [True]
    assert guard.first_use([first, second, second], now()) == [False, True, False]


def test_a_forgotten_token_id_is_accepted_again(guard: ReplayGuard) -> None:
    used = token()
    guard.first_use([used], now())
    guard.forget([used])
    assert guard.first_use([used], now()) == [True]


def test_a_token_id_is_remembered_until_after_the_token_expired(guard: ReplayGuard) -> None:
    used = token(validity=1)
    guard.first_use([used], now())
    assert guard.first_use([used], now() + dt.timedelta(seconds=2)) == [False]  # the margin covers skew


def test_an_unreachable_redis_makes_replays_uncheckable_not_accepted() -> None:
    guard = RedisReplayGuard(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2))
    with pytest.raises(WebhookUnavailable):
        guard.first_use([token()], now())
