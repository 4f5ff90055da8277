"""The reminder ledger over HTTP on the real server: filtered, cursor-paginated pages that cover every
row exactly once, and per-day counts by status and delivery status."""

from __future__ import annotations

import datetime as dt

from tests.integration.api.conftest import ApiServer, ApiTenant, problem
from tests.integration.api.tenant_data import claim, row, set_reminders

TODAY = dt.date(2030, 1, 28)
DAY = dt.timedelta(days=1)


def ledger_of(api_server: ApiServer, count: int) -> tuple[ApiTenant, list[int]]:
    """A tenant with ``count`` customers c0..c{count-1} and one pending reminder each, claimed TODAY."""
    tenant = api_server.make_tenant()
    with api_server.client(tenant.key) as client:
        client.post(f"/v1/tenants/{tenant.slug}/customers", json={"rows": [row(f"c{i}") for i in range(count)]})
    return tenant, claim(api_server, tenant, TODAY)


def test_pages_cover_every_reminder_once_newest_first(api_server: ApiServer) -> None:
    tenant, ids = ledger_of(api_server, 7)
    seen: list[int] = []
    url = f"/v1/tenants/{tenant.slug}/reminders?limit=3"
    with api_server.client(tenant.key) as client:
        page = client.get(url).json()
        pages = 1
        while True:
            seen += [item["id"] for item in page["items"]]
            if page["next"] is None:
                break
            page = client.get(f"{url}&cursor={page['next']}").json()
            pages += 1
        bad = problem(client.get(f"{url}&cursor=bm90LWEtY3Vyc29y"), 422)
        too_big = problem(client.get(f"{url.split('?')[0]}?limit=501"), 422)
    assert (seen, pages) == (sorted(ids, reverse=True), 3)
    assert bad["detail"].startswith("cursor is not one this API returned")
    assert too_big["detail"] == "query.limit: Input should be less than or equal to 500"


def test_filters_combine_status_delivery_status_days_and_customer(api_server: ApiServer) -> None:
    tenant, ids = ledger_of(api_server, 5)
    sent_at = dt.datetime(2030, 1, 27, 9, tzinfo=dt.UTC)
    set_reminders(api_server, ids[:3], status="sent", sent_at=sent_at, local_date=TODAY - DAY)
    set_reminders(api_server, ids[:1], delivery_status="delivered", delivery_status_at=sent_at)
    set_reminders(api_server, ids[1:2], delivery_status="delivery_failed", delivery_reason="unknown subscriber",
                  delivery_error_code=1)  # fmt: skip

    def listed(query: str) -> list[int]:
        with api_server.client(tenant.key) as client:
            answer = client.get(f"/v1/tenants/{tenant.slug}/reminders?{query}")
        assert answer.status_code == 200, answer.text
        return [item["id"] for item in answer.json()["items"]]

    assert listed("status=sent") == [ids[2], ids[1], ids[0]]
    assert listed("delivery_status=delivered") == [ids[0]]
    assert listed("status=sent&delivery_status=none") == [ids[2]]
    assert listed(f"from={TODAY}&to={TODAY}") == [ids[4], ids[3]]
    assert listed(f"to={TODAY - DAY}&delivery_status=delivery_failed") == [ids[1]]
    assert listed("customer=c3") == [ids[3]]
    assert listed("customer=nobody") == []
    with api_server.client(tenant.key) as client:
        failed = client.get(f"/v1/tenants/{tenant.slug}/reminders?delivery_status=delivery_failed").json()["items"][0]
        bad_status = problem(client.get(f"/v1/tenants/{tenant.slug}/reminders?status=lost"), 422)
    assert (failed["delivery_reason"], failed["delivery_error_code"], failed["status"]) == (
        "unknown subscriber", 1, "sent",
    )  # fmt: skip
    assert bad_status["detail"].startswith("status 'lost' must be one of pending")


def test_counts_per_day_by_status_and_delivery_status(api_server: ApiServer) -> None:
    tenant, ids = ledger_of(api_server, 4)
    set_reminders(api_server, ids[:2], status="sent", local_date=TODAY - DAY)
    set_reminders(api_server, ids[:1], delivery_status="delivered")
    url = f"/v1/tenants/{tenant.slug}/reminders/counts"
    with api_server.client(tenant.key) as client:
        counts = client.get(f"{url}?from={TODAY - 7 * DAY}&to={TODAY}").json()
        too_long = problem(client.get(f"{url}?from=2029-01-01&to={TODAY}"), 422)
        missing = problem(client.get(url), 422)
    assert counts == {
        "days": [
            {"date": str(TODAY - DAY), "total": 2, "by_status": {"sent": 2},
             "by_delivery_status": {"delivered": 1, "none": 1}},
            {"date": str(TODAY), "total": 2, "by_status": {"pending": 2}, "by_delivery_status": {"none": 2}},
        ]
    }  # fmt: skip
    assert too_long["detail"] == "the range covers 393 days; at most 92 at a time"
    assert "from" in missing["detail"] and "to" in missing["detail"]
