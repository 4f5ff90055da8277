"""The OpenAPI document and the docs page the server publishes."""

from __future__ import annotations

from tests.integration.api.conftest import ApiServer

# The routes of this part of the API (others add theirs).
CORE_PATHS = {
    "/healthz": {"get"},
    "/readyz": {"get"},
    "/v1/tenants": {"get", "post"},
    "/v1/tenants/{slug}": {"get", "delete"},
    "/v1/tenants/{slug}/move": {"post"},
    "/v1/tenants/{slug}/api-keys": {"get", "post"},
    "/v1/tenants/{slug}/api-keys/{prefix}": {"delete"},
}


def test_the_openapi_document_lists_the_paths_and_the_bearer_scheme(api_server: ApiServer) -> None:
    with api_server.client() as client:
        response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.") and document["info"]["title"] == "tenant-worker"
    for path, methods in CORE_PATHS.items():
        assert path in document["paths"], path
        assert methods <= set(document["paths"][path]), path
    assert document["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http", "scheme": "bearer", "description": "An admin key or a tenant's API key",
    }  # fmt: skip
    for path in CORE_PATHS:
        if path.startswith("/v1/"):
            for operation in document["paths"][path].values():
                assert operation["security"] == [{"ApiKey": []}], path


def test_every_change_takes_an_idempotency_key_and_errors_are_problem_documents(api_server: ApiServer) -> None:
    with api_server.client() as client:
        document = client.get("/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            headers = [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]
            assert (headers.count("Idempotency-Key") == 1) == (method in ("post", "put", "patch", "delete")), path
            assert "application/problem+json" in operation["responses"]["default"]["content"], path
            if "422" in operation["responses"]:
                assert "application/problem+json" in operation["responses"]["422"]["content"], path
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_the_docs_page_is_served(api_server: ApiServer) -> None:
    with api_server.client() as client:
        response = client.get("/docs")
    assert response.status_code == 200
    assert "/openapi.json" in response.text
