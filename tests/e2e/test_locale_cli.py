"""Languages from the CLI: a tenant's date style, per-locale templates checked when saved, and the
template preview with encodings, segment counts and the characters that force UCS-2."""

from __future__ import annotations

import json

from tests.conftest import unique_slug
from tests.e2e.test_cli import cli


def test_templates_are_previewed_per_window_and_locale_with_what_forces_ucs2(worker_env):
    slug = unique_slug("lang")
    created = cli(
        worker_env, "tenant", "create", "--slug", slug, "--name", "Bxl Fiber", "--timezone", "Europe/Brussels",
        "--originator", "BxlFiber", "--locale", "nl_BE", "--windows", "3,1", "--date-style", "medium",
        "--template", "Nog {days_left} {days_left|dag|dagen}: betaal {amount} voor {expires_on}.", "--json",
    )  # fmt: skip
    assert (json.loads(created.stdout)["date_style"], json.loads(created.stdout)["normalize_text"]) == ("medium", False)

    refused = cli(worker_env, "tenant", "template", slug, "{days_left|jour}", "--locale", "fr", check=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "plural field {days_left|jour} has 1 form; locale fr needs 2 (one, other) or 3 (one, many, other)" in (
        refused.stderr
    )
    unknown = cli(worker_env, "tenant", "template", slug, "Bonjour", "--locale", "xx_YY", check=False)
    assert unknown.returncode == 2 and "not a CLDR locale" in unknown.stderr

    french = "Plus que {days_left} {days_left|jour|jours} : payez {amount} d\u2019ici le {expires_on}."
    saved = cli(worker_env, "tenant", "template", slug, french, "--locale", "fr-be", "--window", "1").stdout
    assert saved.strip() == f"template saved for {slug} (window 1, locale fr_BE)"  # in CLDR's spelling

    shown = cli(worker_env, "tenant", "template", "preview", slug, "--customer-locale", "fr_BE", "--json")
    rows = json.loads(shown.stdout)["templates"]
    scopes = [
        (r["customer_locale"], r["window"], r["template_window"], r["template_locale"], r["locale"]) for r in rows
    ]
    assert scopes == [
        (None, 1, 1, "fr_BE", "fr_BE"),
        (None, 3, None, None, "nl_BE"),
        (None, 1, None, None, "nl_BE"),
        ("fr_BE", 3, None, None, "nl_BE"),  # no French text for window 3: the tenant's, formatted as it is
        ("fr_BE", 1, 1, "fr_BE", "fr_BE"),
    ]
    dutch = rows[1]
    assert dutch["sample"]["body"].startswith("Nog 3 dagen: betaal € 1.249,50 voor ")
    assert (dutch["sample"]["encoding"], dutch["sample"]["segments"], dutch["sample"]["ucs2_chars"]) == ("GSM-7", 1, [])
    assert dutch["worst"]["encoding"] == "GSM-7" and dutch["fits"]
    curly = rows[0]
    # UCS-2 anyway (the curly apostrophe): the amount keeps CLDR's no-break spaces, which cost nothing more.
    assert curly["sample"]["body"].startswith("Plus que 1 jour : payez 1\u202f249,50\xa0€ d\u2019ici le 5 ")
    assert (curly["sample"]["encoding"], curly["sample"]["ucs2_chars"]) == ("UCS-2", ["\u2019"])

    text = cli(worker_env, "tenant", "template", "preview", slug).stdout
    assert "window 1, template (window 1, locale fr_BE), formatted as fr_BE" in text
    assert "UCS-2 because of: '\u2019' U+2019" in text
    assert "sample: GSM-7, 1 segment (" in text
