"""Beat's leader lock on the real password-protected Redis: one holder at a time, renewed and released
only by its holder, and recognised by a token that names the process."""

from __future__ import annotations

import os
import uuid

import pytest
import redis

from tenant_worker.adapters.beat_lock import RedisLeaderLock, process_token
from tests.conftest import redis_db_url


@pytest.fixture
def client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_db_url(redis_url, 11), decode_responses=True)


def test_one_holder_at_a_time_and_only_the_holder_renews_or_releases(client):
    key = f"test:lock:{uuid.uuid4().hex}"
    first, second = RedisLeaderLock(client, key, 5), RedisLeaderLock(client, key, 5)
    assert first.acquire() and not second.acquire()
    assert first.holder() == second.holder() == first.token
    assert first.extend() and not second.extend()
    assert 4000 < client.pttl(key) <= 5000
    assert not second.release() and first.holder() == first.token
    assert first.release() and first.holder() is None
    assert second.acquire() and not first.extend(), "a released lock is not renewed by its old holder"


def test_a_lock_that_redis_lost_is_not_renewed_but_can_be_taken_again_with_the_same_token(client):
    key = f"test:lock:{uuid.uuid4().hex}"
    lock = RedisLeaderLock(client, key, 5)
    assert lock.acquire()
    client.delete(key)  # what a restart without data does
    assert not lock.extend()
    assert lock.acquire() and lock.holder() == lock.token


def test_the_token_names_the_process():
    host, pid, _ = process_token().split(":")
    assert pid == str(os.getpid()) and host
