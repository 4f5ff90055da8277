"""``Idempotency-Key`` with the real server and Redis: a repeat gets the first answer and runs nothing,
the same key on another request is 422, a repeat while the first still runs is 409; keys are kept per
tenant. Then the Redis store itself: its states and how long it keeps them."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import uuid

import httpx
import redis

from tenant_worker.adapters.api_keys import SqlApiKeyStore
from tenant_worker.adapters.db import session_factory
from tenant_worker.adapters.redis_api import ANSWER_TTL_SECONDS, RUNNING_TTL_SECONDS, RedisIdempotencyStore
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.domain.requests import Claim, StoredAnswer
from tests.conftest import customer, wait_until
from tests.integration.api.conftest import ApiServer, ApiTenant, problem
from tests.seeding import seed_customers

TODAY = dt.date(2026, 6, 1)


def keys_of(api_server: ApiServer, tenant: ApiTenant) -> list[str]:
    return [k.prefix for k in SqlApiKeyStore(session_factory(api_server.database_url)).list([tenant.tenant.id])]


def stored_key(api_server: ApiServer, header: dict[str, str]) -> str:
    """The Redis key of an admin request's Idempotency-Key (the scope is a digest of the admin key)."""
    scope = "admin:" + hashlib.sha256(api_server.admin_key.encode()).hexdigest()[:16]
    return f"tenant_worker:api:idem:{scope}:{hashlib.sha256(header['Idempotency-Key'].encode()).hexdigest()}"


def test_a_repeated_post_returns_the_first_answer_and_creates_nothing(api_server: ApiServer) -> None:
    tenant = api_server.make_tenant()
    key = {"Idempotency-Key": str(uuid.uuid4())}
    with api_server.admin() as admin:
        first = admin.post(f"/v1/tenants/{tenant.slug}/api-keys", json={"name": "ci"}, headers=key)
        again = admin.post(f"/v1/tenants/{tenant.slug}/api-keys", json={"name": "ci"}, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert again.headers["content-type"] == first.headers["content-type"]
    assert len(keys_of(api_server, tenant)) == 2  # the fixture's key and one new one


def test_the_same_key_with_another_body_is_a_422_problem(api_server: ApiServer) -> None:
    tenant = api_server.make_tenant()
    key = {"Idempotency-Key": str(uuid.uuid4())}
    with api_server.admin() as admin:
        assert admin.post(f"/v1/tenants/{tenant.slug}/api-keys", json={"name": "a"}, headers=key).status_code == 201
        body = problem(admin.post(f"/v1/tenants/{tenant.slug}/api-keys", json={"name": "b"}, headers=key), 422)
        problem(admin.delete(f"/v1/tenants/{tenant.slug}/api-keys/twk_AAAAAAAA", headers=key), 422)
    assert "different request" in body["detail"]
    assert len(keys_of(api_server, tenant)) == 2


def test_keys_are_kept_per_caller_scope(api_server: ApiServer) -> None:
    a, b = api_server.make_tenant(), api_server.make_tenant()
    key = {"Idempotency-Key": "shared-" + uuid.uuid4().hex}
    with api_server.admin() as admin:
        first = admin.post(f"/v1/tenants/{a.slug}/api-keys", json={}, headers=key)
    # b's key has a scope of its own: its request runs (and is refused) instead of replaying the admin's answer.
    with api_server.client(b.key) as tenant_b:
        refused = tenant_b.post(f"/v1/tenants/{a.slug}/api-keys", json={}, headers=key)
    assert first.status_code == 201 and refused.status_code == 403
    assert "idempotent-replayed" not in refused.headers


def test_without_the_header_every_post_runs(api_server: ApiServer) -> None:
    tenant = api_server.make_tenant()
    with api_server.admin() as admin:
        for _ in range(2):
            assert admin.post(f"/v1/tenants/{tenant.slug}/api-keys", json={"name": "x"}).status_code == 201
    assert len(keys_of(api_server, tenant)) == 3


def test_an_overlong_key_is_a_400_problem(api_server: ApiServer) -> None:
    tenant = api_server.make_tenant()
    with api_server.admin() as admin:
        response = admin.post(f"/v1/tenants/{tenant.slug}/api-keys", json={}, headers={"Idempotency-Key": "k" * 256})
    problem(response, 400)
    assert len(keys_of(api_server, tenant)) == 1


def test_a_repeat_while_the_first_request_runs_is_409_then_replays_its_answer(api_server: ApiServer) -> None:
    # An offboarding waits for sends in flight: a reminder left `sending` keeps it running for the drain timeout.
    tenant = api_server.make_tenant()
    uow = sql_unit_of_work(session_factory(api_server.database_url))
    with uow() as tx:
        seed_customers(tx, tenant.tenant.id, [customer("c1", TODAY + dt.timedelta(days=3))])
        [(reminder_id, _)] = tx.ledger(tenant.tenant.id).claim_due_reminders(TODAY, (5, 3, 1))
    with uow() as tx:
        assert tx.ledger(tenant.tenant.id).start_sending([reminder_id])
    key = {"Idempotency-Key": str(uuid.uuid4())}
    url = f"/v1/tenants/{tenant.slug}?drain_timeout=3"
    first: list[httpx.Response] = []
    with api_server.admin() as admin:
        running = threading.Thread(target=lambda: first.append(admin.delete(url, headers=key)))
        running.start()
        client = redis.Redis.from_url(api_server.redis_url)
        wait_until(lambda: client.exists(stored_key(api_server, key)), 5, "the first request to claim its key")
        conflict = admin.delete(url, headers=key)
        running.join(20)
        replay = admin.delete(url, headers=key)
    body = problem(conflict, 409)
    assert "still running" in body["detail"]
    assert first[0].status_code == 200 and first[0].json()["still_sending"] == 1
    assert replay.status_code == 200 and replay.json() == first[0].json()
    assert replay.headers["idempotent-replayed"] == "true"


def test_the_redis_store_claims_replays_and_releases(api_server: ApiServer) -> None:
    client = redis.Redis.from_url(api_server.redis_url)
    store = RedisIdempotencyStore(client)
    scope, key = f"test:{uuid.uuid4().hex}", "k-1"
    answer = StoredAnswer(201, "application/json", b'{"id": 1}')

    assert store.claim(scope, key, "fp-1") is Claim.NEW
    assert store.claim(scope, key, "fp-1") is Claim.RUNNING
    assert store.claim(scope, key, "fp-2") is Claim.MISMATCH
    [redis_key] = client.keys(f"tenant_worker:api:idem:{scope}:*")
    assert 0 < client.ttl(redis_key) <= RUNNING_TTL_SECONDS
    store.remember(scope, key, "fp-1", answer)
    assert store.claim(scope, key, "fp-1") == answer
    assert store.claim(scope, key, "fp-2") is Claim.MISMATCH
    assert RUNNING_TTL_SECONDS < client.ttl(redis_key) <= ANSWER_TTL_SECONDS == 24 * 3600
    assert store.claim(f"{scope}-other", key, "fp-1") is Claim.NEW
    store.release(scope, key)
    assert store.claim(scope, key, "fp-1") is Claim.NEW
