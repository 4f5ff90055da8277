"""Templates over HTTP on the real server: saved per window and locale with a rendered preview, its
encoding and segments; refused (422, every reason named) when the CLI would refuse them."""

from __future__ import annotations

from tests.integration.api.conftest import ApiServer, problem


def test_a_template_is_saved_with_a_preview_and_its_cost_and_then_listed(api_server: ApiServer) -> None:
    tenant = api_server.make_tenant()
    body = "Hoi {customer_name}, je {plan} verloopt over {days_left} {days_left|dag|dagen}. Betaal {amount}."
    with api_server.client(tenant.key) as client:
        saved = client.put(f"/v1/tenants/{tenant.slug}/templates/3/nl", json={"body": body})
        listed = client.get(f"/v1/tenants/{tenant.slug}/templates").json()
    assert saved.status_code == 200, saved.text
    shown = saved.json()
    assert (shown["window"], shown["locale"], shown["body"]) == (3, "nl", body)
    # The sample values as the template's locale writes them (CLDR through Babel, GSM-7 spaces).
    assert shown["preview"] == "Hoi Alex Jansen, je Fiber 1000 verloopt over 3 dagen. Betaal € 1.249,50."
    # Length in septets: "€" is an escape pair in GSM-7.
    assert shown["cost"] == {"encoding": "GSM-7", "length": len(shown["preview"]) + 1, "segments": 1}
    assert shown["worst_case"]["segments"] == 2 and shown["max_segments"] == 3
    assert {"window": 3, "locale": "nl", "body": body} in listed["templates"]
    assert {k: listed["templates"][-1][k] for k in ("window", "locale")} == {"window": None, "locale": None}
    assert "customer_name" in listed["placeholders"]


def test_an_unknown_placeholder_is_a_problem_naming_it_and_nothing_is_saved(api_server: ApiServer) -> None:
    tenant = api_server.make_tenant()
    with api_server.client(tenant.key) as client:
        refused = problem(client.put(f"/v1/tenants/{tenant.slug}/templates/any/any", json={"body": "Pay {iban}"}), 422)
        default = client.get(f"/v1/tenants/{tenant.slug}/templates").json()["templates"]
    assert refused["detail"].startswith("unknown placeholder {iban}; allowed: amount, amount_raw, currency")
    assert len(default) == 1 and "{iban}" not in default[0]["body"]


def test_a_window_the_tenant_lacks_a_bad_scope_a_bad_locale_or_too_many_segments_are_refused(
    api_server: ApiServer,
) -> None:
    tenant = api_server.make_tenant()
    url = f"/v1/tenants/{tenant.slug}/templates"
    with api_server.client(tenant.key) as client:
        no_window = problem(client.put(f"{url}/4/any", json={"body": "Hi"}), 422)
        bad_scope = problem(client.put(f"{url}/soon/any", json={"body": "Hi"}), 422)
        too_long = problem(client.put(f"{url}/any/any", json={"body": "{customer_name} " * 6}), 422)
        bad_locale = problem(client.put(f"{url}/any/{'x' * 40}", json={"body": "Hi"}), 422)
    assert no_window["detail"] == "window 4 is not one of the tenant's windows (5, 3, 1)"
    assert bad_scope["detail"] == "window 'soon' must be a number of days or 'any'"
    assert "SMS segments" in too_long["detail"] and "max_segments" in too_long["detail"]
    assert bad_locale["detail"].endswith("is not a CLDR locale (e.g. nl_NL, fr_BE, en)")
