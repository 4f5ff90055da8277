"""Saving a template through ``services.template_editing``: the CLI's validation, and a preview with
sample values, its encoding and segments, and the worst case against the tenant's cap."""

from __future__ import annotations

import datetime as dt

import pytest

from tenant_worker.domain.templates import TemplateError
from tenant_worker.services.template_editing import save_with_preview
from tests.fakes import FakeStorage
from tests.unit.services.conftest import NewTenant

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def test_a_saved_template_is_previewed_for_its_window_with_sample_values(
    storage: FakeStorage, new_tenant: NewTenant
) -> None:
    tenant = new_tenant()
    with storage() as tx:
        shown = save_with_preview(tx, tenant.slug, "Hi {customer_name}, {days_left} days left at {org_name}", 3, "nl")
        saved = [t for t in tx.catalog.templates(tenant.id) if t.window_days == 3]
    assert shown.preview == "Hi Alex Jansen, 3 days left at Acme Fiber"
    assert (shown.encoding, shown.segments, shown.length) == ("GSM-7", 1, len(shown.preview))
    assert (shown.worst_case_segments, shown.max_segments) == (1, 3)
    assert [(t.locale, t.body) for t in saved] == [("nl", shown.template.body)]


def test_a_non_gsm_character_makes_the_preview_ucs2(storage: FakeStorage, new_tenant: NewTenant) -> None:
    tenant = new_tenant()
    with storage() as tx:
        body = "Hallo {customer_name} \u2014 betaal {amount} {currency}"
        shown = save_with_preview(tx, tenant.slug, body, None, None)
    assert (shown.encoding, shown.worst_case_encoding) == ("UCS-2", "UCS-2")


def test_an_unknown_placeholder_is_refused_naming_it_and_nothing_is_saved(
    storage: FakeStorage, new_tenant: NewTenant
) -> None:
    tenant = new_tenant()
    with pytest.raises(TemplateError, match=r"unknown placeholder \{iban\}; allowed: amount"), storage() as tx:
        save_with_preview(tx, tenant.slug, "Pay to {iban}", None, None)
    with storage() as tx:
        assert all("{iban}" not in t.body for t in tx.catalog.templates(tenant.id))
