"""Every tenant-scoped route on the real server: no key is 401, another tenant's key is 404 (as for a
tenant that does not exist) and changes nothing, and the tenant's own key works."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.api.conftest import ApiServer, problem
from tests.integration.api.tenant_data import row

# Every tenant route with a request it accepts, relative to /v1/tenants/{slug}; c1 exists.
TENANT_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/customers", {"rows": [row("c2")]}),
    ("GET", "/customers/c1", None),
    ("DELETE", "/customers/c1", None),
    ("POST", "/customers/c1/opt-out", None),
    ("DELETE", "/customers/c1/opt-out", None),
    ("GET", "/templates", None),
    ("PUT", "/templates/any/nl", {"body": "Hoi {customer_name}, nog {days_left} dagen."}),
    ("GET", "/schedule", None),
    ("PUT", "/schedule", {"send_time": "09:15"}),
    ("POST", "/schedule/pause", None),
    ("POST", "/schedule/resume", None),
    ("POST", "/schedule/run-now", None),
    ("GET", "/reminders?status=pending&limit=10", None),
    ("GET", "/reminders/counts?from=2026-01-01&to=2026-01-31", None),
]


def snapshot(server: ApiServer, slug: str) -> tuple[Any, ...]:
    """What any tenant route could change, read with the admin key."""
    with server.admin() as admin:
        customer = admin.get(f"/v1/tenants/{slug}/customers/c1").json()
        schedule = admin.get(f"/v1/tenants/{slug}/schedule").json()
        templates = admin.get(f"/v1/tenants/{slug}/templates").json()
        c2 = admin.get(f"/v1/tenants/{slug}/customers/c2").status_code
    return customer, schedule, templates, c2


@pytest.mark.parametrize(("method", "path", "body"), TENANT_ROUTES, ids=[f"{m} {p}" for m, p, _ in TENANT_ROUTES])
def test_a_tenant_route_needs_a_key_hides_other_tenants_and_works_with_its_own(
    api_server: ApiServer, method: str, path: str, body: dict[str, Any] | None
) -> None:
    mine, other = api_server.make_tenant(), api_server.make_tenant()
    url = f"/v1/tenants/{mine.slug}{path}"
    with api_server.client(mine.key) as own:
        assert own.post(f"/v1/tenants/{mine.slug}/customers", json={"rows": [row("c1")]}).status_code == 200
    before = snapshot(api_server, mine.slug)

    with api_server.client() as anonymous:
        response = anonymous.request(method, url, json=body)
    assert problem(response, 401)["detail"] == "send an API key: Authorization: Bearer <key>"
    with api_server.client(other.key) as stranger:
        hidden = problem(stranger.request(method, url, json=body), 404)
        unknown = problem(stranger.request(method, url.replace(mine.slug, "no-such-tenant"), json=body), 404)
    assert hidden["detail"] == f"no tenant {mine.slug!r}" and unknown["title"] == hidden["title"]
    assert snapshot(api_server, mine.slug) == before, "a refused request changed the tenant"

    with api_server.client(mine.key) as own:
        response = own.request(method, url, json=body)
    assert response.status_code in (200, 202), response.text
    assert response.headers["content-type"] == "application/json"
