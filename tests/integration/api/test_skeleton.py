"""The API server's basics: probes, and an admin key, a tenant key and no key on an admin route."""

from __future__ import annotations

from tests.integration.api.conftest import ApiServer, problem


def test_healthz_answers_without_a_key(api_server: ApiServer) -> None:
    with api_server.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_reports_database_and_redis_reachable(api_server: ApiServer) -> None:
    with api_server.client() as client:
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


def test_tenant_list_needs_an_admin_key(api_server: ApiServer) -> None:
    tenant = api_server.make_tenant()
    with api_server.client() as anonymous:
        problem(anonymous.get("/v1/tenants"), 401)
    with api_server.client("twk_AAAAAAAA_" + "x" * 43) as unknown:
        problem(unknown.get("/v1/tenants"), 401)
    with api_server.client(tenant.key) as tenant_client:
        problem(tenant_client.get("/v1/tenants"), 403)
    with api_server.admin() as admin:
        response = admin.get("/v1/tenants")
    assert response.status_code == 200
    assert tenant.slug in [t["slug"] for t in response.json()]


def test_unknown_routes_and_methods_are_problem_documents(api_server: ApiServer) -> None:
    with api_server.admin() as admin:
        problem(admin.get("/v1/no-such-thing"), 404)
        problem(admin.put("/v1/tenants"), 405)
        problem(admin.post("/v1/tenants", content=b"[", headers={"content-type": "application/json"}), 422)
