"""The admin routes on the real server: each refuses no key (401) and a tenant key (403), and with the
admin key does what its CLI twin does: tenants created, listed, shown, moved and offboarded, and
tenant API keys created (shown once), listed and revoked."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tenant_worker.adapters.api_keys import SqlApiKeyStore
from tenant_worker.adapters.db import session_factory
from tenant_worker.domain.api_keys import hash_key
from tests.conftest import unique_slug
from tests.integration.api.conftest import ApiServer, problem

# Every admin route, with a body it accepts; ``{slug}`` and ``{prefix}`` are filled in per test.
ADMIN_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/v1/tenants", None),
    ("POST", "/v1/tenants", {"slug": "x", "name": "X", "timezone": "UTC", "originator": "X"}),
    ("GET", "/v1/tenants/{slug}", None),
    ("DELETE", "/v1/tenants/{slug}", None),
    ("POST", "/v1/tenants/{slug}/move", {"dedicated": True}),
    ("GET", "/v1/tenants/{slug}/api-keys", None),
    ("POST", "/v1/tenants/{slug}/api-keys", {"name": "x"}),
    ("DELETE", "/v1/tenants/{slug}/api-keys/{prefix}", None),
]


def new_tenant_body(**fields: Any) -> dict[str, Any]:
    return {"slug": unique_slug("adm"), "name": "Acme Fiber", "timezone": "Europe/Amsterdam",
            "originator": "AcmeFiber", **fields}  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES, ids=[f"{m} {p}" for m, p, _ in ADMIN_ROUTES])
def test_admin_routes_refuse_no_key_and_tenant_keys(
    api_server: ApiServer, method: str, path: str, body: dict[str, Any] | None
) -> None:
    tenant = api_server.make_tenant()
    url = path.format(slug=tenant.slug, prefix=tenant.key[:12])
    with api_server.client() as anonymous:
        response = anonymous.request(method, url, json=body)
        problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
    with api_server.client(tenant.key) as own_key:
        problem(own_key.request(method, url, json=body), 403)
    with api_server.admin() as admin:
        tenant_view = admin.get(f"/v1/tenants/{tenant.slug}").json()
    assert tenant_view["status"] == "active", "a refused request changed the tenant"


def test_create_get_and_list_tenants(api_server: ApiServer) -> None:
    body = new_tenant_body(windows=[7, 2], send_time="09:30", sending_window="08:00-20:00")
    with api_server.admin() as admin:
        created = admin.post("/v1/tenants", json=body)
        assert created.status_code == 201, created.text
        assert created.headers["location"] == f"/v1/tenants/{body['slug']}"
        shown = admin.get(f"/v1/tenants/{body['slug']}").json()
        listed = [t["slug"] for t in admin.get("/v1/tenants").json()]
    assert created.json()["schedule"] == "created"
    assert shown["windows"] == [7, 2] and shown["send_time"] == "09:30"
    assert shown["sending_window"] == "08:00-20:00" and shown["queue"].startswith("reminders.shard.")
    assert len(shown["templates"]) == 1
    assert body["slug"] in listed


def test_creating_a_taken_slug_or_an_invalid_tenant_is_a_422_problem(api_server: ApiServer) -> None:
    body = new_tenant_body()
    with api_server.admin() as admin:
        assert admin.post("/v1/tenants", json=body).status_code == 201
        taken = problem(admin.post("/v1/tenants", json=body), 422)
        bad = problem(admin.post("/v1/tenants", json=new_tenant_body(send_time="25:00")), 422)
    assert body["slug"] in taken["detail"]
    assert "25:00" in bad["detail"]


def test_unknown_tenant_is_404_on_every_admin_route(api_server: ApiServer) -> None:
    missing = unique_slug("gone")
    with api_server.admin() as admin:
        for method, path, body in ADMIN_ROUTES[2:]:
            problem(admin.request(method, path.format(slug=missing, prefix="twk_AAAAAAAA"), json=body), 404)


def test_move_to_dedicated_queue_and_back_to_a_shard(api_server: ApiServer) -> None:
    tenant = api_server.make_tenant()
    with api_server.admin() as admin:
        dedicated = admin.post(f"/v1/tenants/{tenant.slug}/move", json={"dedicated": True})
        assert dedicated.status_code == 200, dedicated.text
        shard = admin.post(f"/v1/tenants/{tenant.slug}/move", json={"shard": 3})
        neither = problem(admin.post(f"/v1/tenants/{tenant.slug}/move", json={}), 422)
        shown = admin.get(f"/v1/tenants/{tenant.slug}").json()
    assert dedicated.json()["new_queue"] == f"reminders.tenant.{tenant.slug}"
    assert shard.json()["old_queue"] == f"reminders.tenant.{tenant.slug}"
    assert shown["queue"] == shard.json()["new_queue"] == "reminders.shard.03"
    assert "exactly one" in neither["detail"]


def test_offboard_pauses_and_purge_deletes_the_tenant_and_its_keys(api_server: ApiServer) -> None:
    kept, purged = api_server.make_tenant(), api_server.make_tenant()
    with api_server.admin() as admin:
        report = admin.delete(f"/v1/tenants/{kept.slug}", params={"drain_timeout": 1})
        assert report.status_code == 200, report.text
        assert admin.get(f"/v1/tenants/{kept.slug}").json()["status"] == "paused"
        gone = admin.delete(f"/v1/tenants/{purged.slug}", params={"purge": "true", "drain_timeout": 1})
        assert gone.json()["purged"] is True
        problem(admin.get(f"/v1/tenants/{purged.slug}"), 404)
    assert report.json()["schedule_removed"] is True and report.json()["purged"] is False
    store = SqlApiKeyStore(session_factory(api_server.database_url))
    assert store.find(hash_key(purged.key)) is None


def test_api_keys_are_created_once_listed_without_secret_and_revoked(api_server: ApiServer) -> None:
    tenant = api_server.make_tenant("first")
    with api_server.admin() as admin:
        created = admin.post(f"/v1/tenants/{tenant.slug}/api-keys", json={"name": "billing"})
        assert created.status_code == 201, created.text
        new_key = created.json()["key"]
        listed = admin.get(f"/v1/tenants/{tenant.slug}/api-keys")
    assert new_key.startswith(created.json()["prefix"]) and created.json()["prefix"].startswith("twk_")
    assert [k["name"] for k in listed.json()] == ["first", "billing"]
    assert new_key not in listed.text and tenant.key not in listed.text
    with api_server.client(new_key) as client:
        assert client.get(f"/v1/tenants/{tenant.slug}/api-keys").status_code == 403  # a working key, not admin
    with api_server.admin() as admin:
        revoked = admin.delete(f"/v1/tenants/{tenant.slug}/api-keys/{created.json()['prefix']}")
        again = admin.delete(f"/v1/tenants/{tenant.slug}/api-keys/{created.json()['prefix']}")
    assert revoked.status_code == again.status_code == 200
    assert revoked.json()["active"] is False and revoked.json()["revoked_at"] == again.json()["revoked_at"]
    with api_server.client(new_key) as client:
        assert "revoked" in problem(client.get(f"/v1/tenants/{tenant.slug}/api-keys"), 401)["detail"]


def test_a_key_cannot_be_revoked_through_another_tenant(api_server: ApiServer) -> None:
    a, b = api_server.make_tenant(), api_server.make_tenant()
    with api_server.admin() as admin:
        problem(admin.delete(f"/v1/tenants/{b.slug}/api-keys/{a.key[:12]}"), 404)
    store = SqlApiKeyStore(session_factory(api_server.database_url))
    found = store.find(hash_key(a.key))
    assert found is not None and found.active


def test_the_server_log_never_shows_a_key(api_server: ApiServer) -> None:
    tenant = api_server.make_tenant()
    marker = uuid.uuid4().hex
    with api_server.client(tenant.key) as client:
        client.get(f"/v1/tenants?{marker}")
    with api_server.admin() as admin:
        admin.get("/v1/tenants")
    log = api_server.text()
    assert marker in log  # the access log is being written
    assert api_server.admin_key not in log and tenant.key not in log
