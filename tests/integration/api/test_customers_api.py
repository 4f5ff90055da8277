"""Customers over HTTP on the real server: the bulk upsert through the import service (per-row errors in
the answer, valid rows imported), and one customer's get, remove, opt-out and opt-in."""

from __future__ import annotations

import datetime as dt

from tests.integration.api.conftest import ApiServer, problem
from tests.integration.api.tenant_data import claim, row


def test_an_upsert_imports_valid_rows_and_lists_each_rejected_one_with_its_reason(api_server: ApiServer) -> None:
    tenant = api_server.make_tenant()
    rows = [
        row("ada", subscription_ref="fiber"),
        row("ada", subscription_ref="tv", phone="not a phone"),
        row("bob", expires_on="2030-02-30"),
        row("cy", amount=12.5),
        row("cy"),  # the same key again
    ]
    with api_server.client(tenant.key) as client:
        answer = client.post(f"/v1/tenants/{tenant.slug}/customers", json={"rows": rows})
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert {k: result[k] for k in ("rows", "created", "updated", "unchanged", "rejected", "applied")} == {
        "rows": 5, "created": 2, "updated": 0, "unchanged": 0, "rejected": 3, "applied": True,
    }  # fmt: skip
    assert [(r["row"], r["external_ref"]) for r in result["rejects"]] == [(2, "ada"), (3, "bob"), (5, "cy")]
    assert "phone" in result["rejects"][0]["reason"] and "expires_on" in result["rejects"][1]["reason"]
    assert result["rejects"][2]["reason"].startswith("external_ref 'cy' repeats line 4")
    with api_server.client(tenant.key) as client:
        cy = client.get(f"/v1/tenants/{tenant.slug}/customers/cy").json()
        assert client.get(f"/v1/tenants/{tenant.slug}/customers/bob").status_code == 404
    assert [(s["plan"], s["amount"], s["expires_on"]) for s in cy["subscriptions"]] == [
        ("Fiber 100", "12.50", "2030-01-31")
    ]


def test_the_same_rows_again_change_nothing_and_a_new_expiry_is_a_renewal(api_server: ApiServer) -> None:
    tenant = api_server.make_tenant()
    rows = [row(f"c{i}") for i in range(3)]
    url = f"/v1/tenants/{tenant.slug}/customers"
    with api_server.client(tenant.key) as client:
        assert client.post(url, json={"rows": rows}).json()["created"] == 3
        assert client.post(url, json={"rows": rows}).json()["unchanged"] == 3
        rows[0]["expires_on"] = "2030-03-31"
        again = client.post(url, json={"rows": rows}).json()
        preview = client.post(url, json={"rows": [row("new")], "dry_run": True}).json()
        assert client.get(f"{url}/new").status_code == 404
    assert (again["updated"], again["renewed"], again["unchanged"]) == (1, 1, 2)
    assert (preview["created"], preview["applied"], preview["dry_run"]) == (1, False, True)


def test_too_many_rows_or_none_are_refused_as_problems(api_server: ApiServer) -> None:
    tenant = api_server.make_tenant()
    url = f"/v1/tenants/{tenant.slug}/customers"
    with api_server.client(tenant.key) as client:
        too_many = problem(client.post(url, json={"rows": [row(f"c{i}") for i in range(1001)]}), 413)
        empty = problem(client.post(url, json={"rows": []}), 422)
        shapeless = problem(client.post(url, json={"rows": [{"external_ref": "x"}]}), 422)
    assert too_many["detail"] == "1,001 rows; send at most 1,000 per request"
    assert empty["detail"].startswith("rows:")
    assert "rows.0.name: Field required" in shapeless["detail"]


def test_remove_opt_out_and_back_report_what_changed_and_cancel_pending_reminders(api_server: ApiServer) -> None:
    tenant = api_server.make_tenant()
    today = dt.date(2030, 1, 28)
    url = f"/v1/tenants/{tenant.slug}/customers"
    with api_server.client(tenant.key) as client:
        client.post(url, json={"rows": [row("ada"), row("bob")]})
        assert len(claim(api_server, tenant, today)) == 2  # both expire in 3 days: pending
        out = client.post(f"{url}/ada/opt-out").json()
        out_again = client.post(f"{url}/ada/opt-out").json()
        shown = client.get(f"{url}/ada").json()
        back = client.delete(f"{url}/ada/opt-out").json()
        removed = client.delete(f"{url}/bob").json()
        removed_again = client.delete(f"{url}/bob").json()
        gone = problem(client.delete(f"{url}/nobody"), 404)
        pending = client.get(f"/v1/tenants/{tenant.slug}/reminders?status=pending").json()["items"]
    assert (out["changed"], out["cancelled"], out_again["changed"], out_again["cancelled"]) == (True, 1, False, 0)
    assert shown["opted_out"] is True and shown["opted_out_at"] is not None
    assert back["changed"] is True and back["action"] == "opt-in"
    assert (removed["changed"], removed["cancelled"], removed_again["changed"]) == (True, 1, False)
    assert gone["detail"].startswith("unknown customer 'nobody'")
    assert pending == []


def test_a_retried_upsert_with_its_idempotency_key_gets_the_first_answer(api_server: ApiServer) -> None:
    tenant = api_server.make_tenant()
    body = {"rows": [row("ada"), row("bob")]}
    url = f"/v1/tenants/{tenant.slug}/customers"
    with api_server.client(tenant.key, **{"Idempotency-Key": "upsert-1"}) as client:
        first = client.post(url, json=body)
        retried = client.post(url, json=body)
        other = problem(client.post(url, json={"rows": [row("cy")]}), 422)
    with api_server.client(tenant.key) as client:
        again = client.post(url, json=body).json()
    assert first.json()["created"] == 2 and retried.json() == first.json()
    assert retried.headers["idempotent-replayed"] == "true"
    assert "Idempotency-Key" in other["detail"]
    assert again["unchanged"] == 2  # without the key it runs again, and finds nothing to change
