"""The API app served in this process (uvicorn in a thread) on in-memory fakes: every error is a
problem document without a traceback, and ``deps`` lets each key reach exactly what it may. (The
``tenant-worker api`` process is tested in ``tests/integration/api``.)"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Annotated

import httpx
import pytest
import uvicorn
from fastapi import APIRouter, Depends, FastAPI

from tenant_worker.adapters.api_keys import SqlApiKeyStore
from tenant_worker.adapters.db import session_factory
from tenant_worker.api.app import create_app
from tenant_worker.api.deps import TenantScope, tenant_scope
from tenant_worker.bootstrap import bootstrap
from tenant_worker.config import Settings
from tenant_worker.domain.requests import Claim, StoredAnswer
from tenant_worker.services import api_keys
from tenant_worker.services.api_keys import new_key_text
from tests.conftest import free_port, wait_until
from tests.fakes import FakeApiKeyStore, FakeStorage

ADMIN = "admin-" + "k" * 40
SECRET_IN_ERROR = "p4ssw0rd-in-an-exception"


class Unlimited:
    def acquire(self, key_id: str) -> float:
        return 0.0


class NoIdempotency:
    def claim(self, scope: str, key: str, fingerprint: str) -> Claim | StoredAnswer:
        return Claim.NEW

    def remember(self, scope: str, key: str, fingerprint: str, answer: StoredAnswer) -> None:
        pass

    def release(self, scope: str, key: str) -> None:
        pass


probe = APIRouter()


@probe.get("/v1/tenants/{slug}/probe")
def probe_tenant(scope: Annotated[TenantScope, Depends(tenant_scope)]) -> dict[str, object]:
    return {"tenant_id": scope.tenant_id, "slug": scope.slug}


@probe.get("/v1/crash")
def crash() -> None:
    raise RuntimeError(f"database said: {SECRET_IN_ERROR}")


@pytest.fixture
def storage() -> FakeStorage:
    return FakeStorage()


@pytest.fixture
def keys() -> FakeApiKeyStore:
    return FakeApiKeyStore()


@contextlib.contextmanager
def serving(app: FastAPI) -> Iterator[httpx.Client]:
    """``app`` on uvicorn in a thread of this process, on a free port; a client on it."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 10, "uvicorn to start")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.config.port}") as http:
            yield http
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def client(storage: FakeStorage, keys: FakeApiKeyStore) -> Iterator[httpx.Client]:
    settings = Settings(redis_url="redis://127.0.0.1:1/0", admin_api_keys=(ADMIN,))
    services = bootstrap(settings, uow=storage, api_keys=keys, request_limiter=Unlimited(), idempotency=NoIdempotency())
    app = create_app(services)
    app.include_router(probe)
    with serving(app) as http:
        yield http


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert body["status"] == status and body["type"] == "about:blank" and body["title"]
    return body


def test_an_unexpected_error_is_a_500_problem_without_traceback_or_message(client: httpx.Client) -> None:
    response = client.get("/v1/crash")
    body = assert_problem(response, 500)
    assert "Traceback" not in response.text and "RuntimeError" not in response.text
    assert SECRET_IN_ERROR not in response.text
    assert body["detail"] == "an unexpected error occurred; it was logged"


def test_an_unknown_route_is_a_404_problem(client: httpx.Client) -> None:
    assert_problem(client.get("/v1/nothing-here"), 404)


def test_a_wrong_method_is_a_405_problem_with_an_allow_header(client: httpx.Client) -> None:
    response = client.patch("/v1/tenants", headers=auth(ADMIN))
    assert_problem(response, 405)
    assert response.headers["allow"]


def test_an_invalid_body_is_a_422_problem_listing_fields_without_their_values(client: httpx.Client) -> None:
    response = client.post("/v1/tenants", headers=auth(ADMIN), json={"slug": "acme", "name": ["+31612345678"]})
    body = assert_problem(response, 422)
    fields = {e["field"] for e in body["errors"]}  # type: ignore[attr-defined]
    assert {"name", "timezone", "originator"} <= fields
    assert "+31612345678" not in response.text


def test_malformed_json_is_a_422_problem(client: httpx.Client) -> None:
    response = client.post(
        "/v1/tenants", headers={**auth(ADMIN), "content-type": "application/json"}, content=b"{not json"
    )
    assert_problem(response, 422)


def test_invalid_domain_input_is_a_422_problem_with_every_reason(client: httpx.Client) -> None:
    spec = {"slug": "Bad Slug", "name": "Acme", "timezone": "Mars/Olympus", "originator": "AcmeFiber"}
    body = assert_problem(client.post("/v1/tenants", headers=auth(ADMIN), json=spec), 422)
    assert "slug" in str(body["detail"]) and "time zone" in str(body["detail"])


def test_a_tenant_key_reaches_its_own_tenant_only(
    client: httpx.Client, storage: FakeStorage, keys: FakeApiKeyStore
) -> None:
    own, other = storage.add_tenant("acme"), storage.add_tenant("bravo")
    key = api_keys.create_key(storage, keys, "acme").secret

    assert client.get("/v1/tenants/acme/probe", headers=auth(key)).json() == {"tenant_id": own.id, "slug": "acme"}
    foreign = assert_problem(client.get(f"/v1/tenants/{other.slug}/probe", headers=auth(key)), 404)
    missing = assert_problem(client.get("/v1/tenants/charlie/probe", headers=auth(key)), 404)
    assert foreign["title"] == missing["title"]
    assert str(foreign["detail"]).replace("bravo", "charlie") == missing["detail"]


def test_an_admin_key_reaches_every_tenant_and_unknown_ones_are_404(client: httpx.Client, storage: FakeStorage) -> None:
    storage.add_tenant("acme")
    assert client.get("/v1/tenants/acme/probe", headers=auth(ADMIN)).status_code == 200
    assert_problem(client.get("/v1/tenants/nobody/probe", headers=auth(ADMIN)), 404)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": f"Basic {ADMIN}"}, {"Authorization": "Bearer twk_x"}],
    ids=["none", "empty", "basic", "malformed"],
)
def test_without_a_valid_bearer_key_tenant_routes_are_401_with_a_challenge(
    client: httpx.Client, storage: FakeStorage, headers: dict[str, str]
) -> None:
    storage.add_tenant("acme")
    response = client.get("/v1/tenants/acme/probe", headers=headers)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_revoked_key_is_401(client: httpx.Client, storage: FakeStorage, keys: FakeApiKeyStore) -> None:
    storage.add_tenant("acme")
    created = api_keys.create_key(storage, keys, "acme")
    keys.revoke(created.key.prefix, keys.clock.now())
    body = assert_problem(client.get("/v1/tenants/acme/probe", headers=auth(created.secret)), 401)
    assert "revoked" in str(body["detail"])


def test_readyz_is_a_503_problem_naming_what_is_unreachable() -> None:
    dead = free_port()
    settings = Settings(
        redis_url=f"redis://127.0.0.1:{dead}/0", database_url=f"postgresql://nobody@127.0.0.1:{dead}/none"
    )
    with serving(create_app(bootstrap(settings))) as http:
        response = http.get("/readyz")
        alive = http.get("/healthz")
    body = assert_problem(response, 503)
    assert body["checks"] == {"database": "unreachable", "redis": "unreachable"}
    assert body["detail"] == "unreachable: database, redis"
    assert str(dead) not in response.text and "nobody" not in response.text
    assert alive.json() == {"status": "ok"}


def test_a_tenant_key_while_the_database_is_unreachable_is_a_503_problem() -> None:
    dead = free_port()
    settings = Settings(redis_url=f"redis://127.0.0.1:{dead}/0", admin_api_keys=(ADMIN,))
    store = SqlApiKeyStore(session_factory(f"postgresql://nobody@127.0.0.1:{dead}/none"))
    services = bootstrap(settings, api_keys=store, request_limiter=Unlimited(), idempotency=NoIdempotency())
    with serving(create_app(services)) as http:
        response = http.get("/v1/tenants", headers=auth(new_key_text()))
    assert_problem(response, 503)
    assert "nobody" not in response.text and str(dead) not in response.text
