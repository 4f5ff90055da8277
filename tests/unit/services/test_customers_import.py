"""Importing customers from CSV (``services.customers``) on the in-memory fakes: the whole file or
nothing, with counts an operator can check against the file (created, updated, renewed, unchanged)."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest

from tenant_worker.domain.model import ValidationError
from tenant_worker.domain.records import ImportCounts, Tenant
from tenant_worker.domain.storage import StorageUnavailable
from tenant_worker.services.customers import RejectedRow, import_customers, parse_customers_rows
from tests.fakes import FakeStorage

HEADER = "external_ref,name,phone,plan,amount,currency,expires_on"
ADA = "c-1,Ada Lovelace,+31 6 1234 5678,Fiber 100,29.95,eur,2026-03-05"
BOB = "c-2,Bob,+31612345679,Fiber 500,49.00,EUR,2026-04-01"
CY = "c-3,Cy,+31612345670,Fiber 100,19.50,EUR,2026-05-01"
BAD = "c-4,Di,call me,Fiber 100,1.234,EUR,2026-03-05"


def csv_text(*rows: str) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


@pytest.fixture
def storage() -> FakeStorage:
    return FakeStorage()


@pytest.fixture
def tenant(storage: FakeStorage) -> Tenant:
    return storage.add_tenant("acme")


def run_import(storage: FakeStorage, text: str, slug: str = "acme", region: str | None = None) -> ImportCounts:
    with storage() as tx:
        return import_customers(tx, slug, text, region)


def customers_of(storage: FakeStorage, tenant: Tenant) -> dict[str, tuple[object, ...]]:
    """What the tenant has, by external_ref: (name, phone, plan, amount, currency, expires_on)."""
    subscriptions = {s.customer_id: s for s in storage.tables.subscriptions.values()}
    return {
        c.external_ref: (
            c.name,
            c.phone,
            subscriptions[c.id].plan,
            subscriptions[c.id].amount,
            subscriptions[c.id].currency,
            subscriptions[c.id].expires_on,
        )
        for c in storage.tables.customers.values()
        if c.tenant_id == tenant.id
    }


def test_a_new_file_creates_every_customer_with_their_subscription(storage, tenant) -> None:
    counts = run_import(storage, csv_text(ADA, BOB))

    assert counts == ImportCounts(created=2)
    assert customers_of(storage, tenant) == {
        "c-1": ("Ada Lovelace", "+31612345678", "Fiber 100", Decimal("29.95"), "EUR", dt.date(2026, 3, 5)),
        "c-2": ("Bob", "+31612345679", "Fiber 500", Decimal("49.00"), "EUR", dt.date(2026, 4, 1)),
    }


def test_importing_the_same_file_again_changes_nothing(storage, tenant) -> None:
    run_import(storage, csv_text(ADA, BOB))
    before = customers_of(storage, tenant)

    assert run_import(storage, csv_text(ADA, BOB)) == ImportCounts(unchanged=2)
    assert customers_of(storage, tenant) == before


def test_a_changed_row_is_an_update_and_a_new_expiry_date_is_also_a_renewal(storage, tenant) -> None:
    run_import(storage, csv_text(ADA, BOB, CY))

    counts = run_import(
        storage,
        csv_text(
            ADA.replace("Ada Lovelace", "Ada King"),  # renamed
            BOB.replace("2026-04-01", "2027-04-01"),  # renewed for a year
            CY,
            "c-5,Ed,+31612345671,Fiber 100,10,EUR,2026-06-01",  # new
        ),
    )

    assert counts == ImportCounts(created=1, updated=2, renewed=1, unchanged=1)
    customers = customers_of(storage, tenant)
    assert customers["c-1"][0] == "Ada King"
    assert customers["c-2"][5] == dt.date(2027, 4, 1)
    assert len(customers) == 4


def test_a_file_with_one_bad_row_imports_nothing_and_names_the_line(storage, tenant) -> None:
    run_import(storage, csv_text(ADA))
    before = customers_of(storage, tenant)

    with pytest.raises(ValidationError) as refused:
        run_import(storage, csv_text(ADA.replace("Ada Lovelace", "Ada King"), BOB, BAD))

    [problem] = refused.value.problems
    assert problem.startswith("line 4: ")
    assert "phone number" in problem and "amount '1.234'" in problem
    assert customers_of(storage, tenant) == before


def test_an_import_the_database_loses_at_commit_leaves_nothing_half_imported(storage, tenant) -> None:
    storage.fail_next(at="commit")

    with pytest.raises(StorageUnavailable):
        run_import(storage, csv_text(ADA, BOB))

    assert customers_of(storage, tenant) == {}
    assert run_import(storage, csv_text(ADA, BOB)) == ImportCounts(created=2)


def test_importing_for_an_unknown_tenant_is_a_clear_validation_error(storage, tenant) -> None:
    with pytest.raises(ValidationError) as refused:
        run_import(storage, csv_text(ADA), slug="acme-typo")

    assert refused.value.problems == ["unknown tenant 'acme-typo' (see `tenant-worker tenant list`)"]
    assert storage.tables.customers == {}


def test_an_unknown_tenant_is_reported_before_the_file_is_checked(storage) -> None:
    with pytest.raises(ValidationError, match="unknown tenant 'nobody'"):
        run_import(storage, csv_text(BAD), slug="nobody")


def test_a_file_read_line_by_line_imports_like_the_whole_text(storage, tenant) -> None:
    with storage() as tx:
        counts = import_customers(tx, "acme", io.StringIO(csv_text(ADA, BOB)))

    assert counts == ImportCounts(created=2)


def test_numbers_without_a_country_code_take_the_default_region(storage, tenant) -> None:
    run_import(storage, csv_text("c-1,Ada,06 12345678,Fiber 100,29.95,EUR,2026-03-05"), region="NL")

    assert customers_of(storage, tenant)["c-1"][1] == "+31612345678"


def test_the_same_reference_at_another_tenant_is_another_customer(storage, tenant) -> None:
    other = storage.add_tenant("other")
    run_import(storage, csv_text(ADA))

    assert run_import(storage, csv_text(ADA.replace("Ada Lovelace", "Ada of Other")), slug="other") == ImportCounts(
        created=1
    )
    assert customers_of(storage, tenant)["c-1"][0] == "Ada Lovelace"
    assert customers_of(storage, other)["c-1"][0] == "Ada of Other"


# parse_customers_rows: what onboarding's --allow-rejects builds on ---------------------------------------


def test_good_rows_come_back_alongside_the_rejected_ones_with_their_cells_as_written() -> None:
    records, rejects = parse_customers_rows(csv_text(ADA, BAD, BOB))

    assert [r.external_ref for r in records] == ["c-1", "c-2"]
    [reject] = rejects
    assert (reject.line, reject.raw["phone"], reject.raw["amount"]) == (3, "call me", "1.234")
    assert "phone number" in reject.reason and "amount '1.234'" in reject.reason


def test_a_row_with_too_few_fields_is_rejected_with_the_cells_it_has() -> None:
    _records, rejects = parse_customers_rows(csv_text(ADA, "c-2,Bob,+31612345679"))

    assert rejects == [
        RejectedRow(3, "expected 7 fields, found 3", {"external_ref": "c-2", "name": "Bob", "phone": "+31612345679"})
    ]
