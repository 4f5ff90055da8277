"""The per-key rate limit on a server of its own (1 request/s, bursts of 3): a key over its rate gets
429 with ``Retry-After`` while other keys go on, and gets through again once the wait is over. Then
the limiter alone, against the real Redis."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from tenant_worker.adapters.redis_api import RedisRequestLimiter
from tests.conftest import wait_until
from tests.integration.api.conftest import API_REDIS_DB, ApiServer, api_env, problem, running_api

RATE_DB = API_REDIS_DB + 1  # its own buckets: the session server's keys are not counted here


@pytest.fixture(scope="module")
def slow_api(database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    env = api_env(database_url, redis_url, API_RATE_PER_SECOND="1", API_RATE_BURST="3")
    env["REDIS_URL"] = env["REDIS_URL"].rsplit("/", 1)[0] + f"/{RATE_DB}"
    with running_api(env, tmp_path_factory.mktemp("api-rate") / "api.log") as server:
        yield server


def test_a_key_over_its_rate_gets_429_with_retry_after_and_others_go_on(slow_api: ApiServer) -> None:
    tenant = slow_api.make_tenant()
    with slow_api.admin() as admin, slow_api.client(tenant.key) as other:
        answers = [admin.get("/v1/tenants").status_code for _ in range(3)]
        refused = admin.get("/v1/tenants")
        assert other.get("/v1/tenants").status_code == 403  # its own bucket: judged, not limited
        assert answers == [200, 200, 200]
        body = problem(refused, 429)
        assert refused.headers["retry-after"] == "1"
        assert "rate limit" in body["detail"]
        refused_at = time.monotonic()
        wait_until(lambda: admin.get("/v1/tenants").status_code == 200, 5, "the bucket to refill")
    assert time.monotonic() - refused_at > 0.3


def test_probes_are_never_limited(slow_api: ApiServer) -> None:
    with slow_api.client() as client:
        assert {client.get("/healthz").status_code for _ in range(10)} == {200}


def test_the_limiter_grants_the_burst_then_one_per_interval(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + f"/{RATE_DB}")
    limiter = RedisRequestLimiter(client, rate=2.0, burst=4)
    key = f"test-{uuid.uuid4().hex}"

    waits = [limiter.acquire(key) for _ in range(5)]

    assert waits[:4] == [0.0] * 4
    assert 0.4 < waits[4] <= 0.5  # the 5th token arrives half a second after the 4th was taken
    assert limiter.acquire(f"{key}-other") == 0.0
    assert RedisRequestLimiter(client, rate=0, burst=1).acquire(key) == 0.0  # 0 = no limit
    wait_until(lambda: limiter.acquire(key) == 0.0, 2, "a token after the wait")
