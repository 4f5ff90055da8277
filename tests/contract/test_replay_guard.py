"""The webhook replay store, in memory and on the password-protected Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from tenant_worker.adapters.messagebird_webhooks import RedisReplayGuard
from tenant_worker.domain.ports import ReplayGuard, WebhookUnavailable
from tests.fakes.replay import MemoryReplayGuard


@pytest.fixture(params=["memory", "redis"])
def guard(request: pytest.FixtureRequest) -> Iterator[ReplayGuard]:
    if request.param == "memory":
        yield MemoryReplayGuard()
        return
    client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
    yield RedisReplayGuard(client)
    client.close()


def test_a_token_id_is_accepted_once(guard: ReplayGuard) -> None:
    token = uuid.uuid4().hex
    assert guard.first_use(token, 60)
    assert not guard.first_use(token, 60)
    assert guard.first_use(uuid.uuid4().hex, 60)


def test_a_forgotten_token_id_is_accepted_again(guard: ReplayGuard) -> None:
    token = uuid.uuid4().hex
    guard.first_use(token, 60)
    guard.forget(token)
    assert guard.first_use(token, 60)


def test_an_unreachable_redis_makes_replays_uncheckable_not_accepted() -> None:
    guard = RedisReplayGuard(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2))
    with pytest.raises(WebhookUnavailable):
        guard.first_use("x", 60)
