"""The customer sync (``services.customers.sync_customers``) on the fakes: counts, all or nothing,
the removal guard, dry runs, several subscriptions per customer; and hypothesis properties."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenant_worker.adapters import csv_files
from tenant_worker.domain.records import ImportCounts, Tenant
from tenant_worker.domain.storage import StorageUnavailable
from tenant_worker.services import customers as customers_service
from tenant_worker.services.customers import ImportOptions, ImportRefused, ImportReport, source_rows, sync_customers
from tests.fakes import FakeStorage

HEADER = "external_ref,subscription_ref,name,phone,plan,amount,currency,expires_on"
TODAY = dt.date(2026, 3, 2)


def row(ref: str, sub: str = "", expires: str = "2026-03-05", name: str = "", plan: str = "Fiber 100") -> str:
    phone = f"+3161{sum(map(ord, ref)) % 10_000_000:07d}"
    return f"{ref},{sub},{name or 'Customer ' + ref},{phone},{plan},29.95,EUR,{expires}"


def csv_text(*rows: str) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


def sync(storage: FakeStorage, text: str, slug: str = "acme", **options: object) -> ImportReport:
    with storage() as tx:
        return sync_customers(tx, slug, source_rows(csv_files.read_rows(text)), ImportOptions(**options))  # type: ignore[arg-type]


def active(storage: FakeStorage, tenant: Tenant) -> set[tuple[str, str | None]]:
    tables = storage.tables
    return {
        (tables.customers[s.customer_id].external_ref, s.external_ref)
        for s in tables.subscriptions.values()
        if s.tenant_id == tenant.id and s.removed_at is None and tables.customers[s.customer_id].removed_at is None
    }


@pytest.fixture
def storage() -> FakeStorage:
    return FakeStorage()


@pytest.fixture
def tenant(storage: FakeStorage) -> Tenant:
    return storage.add_tenant("acme")


def test_rows_stream_in_chunks_and_are_counted_per_subscription(storage: FakeStorage, tenant: Tenant) -> None:
    seen: list[int] = []
    text = csv_text(row("ada", "fiber"), row("ada", "tv"), row("bob"), row("cy"), row("di"))
    with storage() as tx:
        rows = source_rows(csv_files.read_rows(text))
        report = sync_customers(tx, "acme", rows, ImportOptions(chunk_rows=2), progress=seen.append)
    assert report.counts == ImportCounts(created=5) and report.rows == 5 and report.applied
    assert seen == [2, 4, 5]
    assert active(storage, tenant) == {("ada", "fiber"), ("ada", "tv"), ("bob", None), ("cy", None), ("di", None)}
    assert len({c.id for c in storage.tables.customers.values()}) == 4


def test_any_rejected_row_refuses_the_import_naming_every_line(storage: FakeStorage, tenant: Tenant) -> None:
    text = csv_text(row("ada"), "bob,,Bob,call me,Fiber,1.234,EUR,2026-03-05", row("ada"), row("cy"))
    with pytest.raises(ImportRefused) as refused:
        sync(storage, text)
    assert refused.value.problems[0].startswith("line 3: phone number")
    assert refused.value.problems[1] == "line 4: external_ref 'ada' repeats line 2"
    assert refused.value.report.rejected == 2 and not refused.value.report.applied
    assert storage.tables.customers == {}


def test_allow_rejects_imports_the_valid_rows_and_reports_the_others(storage: FakeStorage, tenant: Tenant) -> None:
    text = csv_text(row("ada"), "bob,,Bob,call me,Fiber,1,EUR,2026-03-05", row("ada"), row("cy"))
    report = sync(storage, text, allow_rejects=True)
    assert report.counts == ImportCounts(created=2)
    assert [(r.line, r.raw.get("external_ref")) for r in report.rejects] == [(3, "bob"), (4, None)]
    assert active(storage, tenant) == {("ada", None), ("cy", None)}


def test_a_lost_connection_half_way_leaves_the_previous_state(storage: FakeStorage, tenant: Tenant) -> None:
    sync(storage, csv_text(row("ada")))
    before = (dict(storage.tables.customers), dict(storage.tables.subscriptions))
    storage.fail_next(at="commit")
    with pytest.raises(StorageUnavailable):
        sync(storage, csv_text(row("ada", expires="2027-01-01"), row("bob")), full_sync=True, max_removals_percent=None)
    assert (storage.tables.customers, storage.tables.subscriptions) == before


def test_a_dry_run_reports_exactly_what_an_import_then_does(storage: FakeStorage, tenant: Tenant) -> None:
    sync(storage, csv_text(row("ada"), row("bob"), row("cy")))
    before = (dict(storage.tables.customers), dict(storage.tables.subscriptions))
    text = csv_text(row("ada", expires="2027-01-01"), row("bob"), row("di"))
    dry = sync(storage, text, full_sync=True, dry_run=True, max_removals_percent=None)
    assert (storage.tables.customers, storage.tables.subscriptions) == before
    assert not dry.applied and dry.dry_run
    assert dry.counts == ImportCounts(created=1, updated=1, renewed=1, unchanged=1, removed=1)
    assert dry.samples == {"created": ["di"], "updated": ["ada"], "renewed": ["ada"], "removed": ["cy"]}
    real = sync(storage, text, full_sync=True, max_removals_percent=None)
    assert (real.counts, real.samples, real.applied) == (dry.counts, dry.samples, True)


def test_the_removal_guard_refuses_a_full_sync_removing_too_much(storage: FakeStorage, tenant: Tenant) -> None:
    sync(storage, csv_text(*(row(f"c{i}") for i in range(20))))
    shorter = csv_text(*(row(f"c{i}") for i in range(17)))  # 3 of 20 = 15% would go
    with pytest.raises(ImportRefused) as refused:
        sync(storage, shorter, full_sync=True)  # the default: 10%
    assert refused.value.problems == [
        "the full sync would remove 3 of 20 subscriptions, more than 10%; "
        "check the file, or allow it with a larger --max-removals"
    ]
    assert len(active(storage, tenant)) == 20
    with pytest.raises(ImportRefused, match="would remove 3 subscriptions; the limit is 2"):
        sync(storage, shorter, full_sync=True, max_removals=2, max_removals_percent=None)
    assert sync(storage, shorter, full_sync=True, max_removals_percent=15).counts.removed == 3
    assert len(active(storage, tenant)) == 17


def test_a_full_sync_skips_the_removed_subscriptions_pending_reminders(storage: FakeStorage, tenant: Tenant) -> None:
    sync(storage, csv_text(row("ada", "fiber"), row("ada", "tv"), row("bob")))
    with storage() as tx:
        tx.ledger(tenant.id).claim_due_reminders(TODAY, (5, 3, 1))
    sync(storage, csv_text(row("ada", "fiber")), full_sync=True, max_removals_percent=None)
    assert sorted((r.status, r.skip_reason) for r in storage.reminders(tenant)) == [
        ("pending", None),
        ("skipped", "removed"),
        ("skipped", "removed"),
    ]


# Properties -------------------------------------------------------------------------------------------

REFS = st.sampled_from(["a", "b", "c", "d", "e"])
SUBS = st.sampled_from(["", "x", "y"])
ROW = st.tuples(REFS, SUBS, st.sampled_from(["2026-03-04", "2026-03-05", "2026-06-01"]), st.sampled_from(["P", "Q"]))


def unique_rows(draw_rows: list[tuple[str, str, str, str]]) -> list[str]:
    """One row per (customer, subscription), each customer with the same details on every row."""
    seen: dict[tuple[str, str], str] = {}
    for ref, sub, expires, plan in draw_rows:
        seen.setdefault((ref, sub), row(ref, sub, expires, plan=plan))
    return list(seen.values())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(ROW, max_size=12))
def test_importing_a_file_twice_equals_importing_it_once(draw_rows: list[tuple[str, str, str, str]]) -> None:
    storage = FakeStorage()
    tenant = storage.add_tenant("acme")
    text = csv_text(*unique_rows(draw_rows))
    sync(storage, text)
    with storage() as tx:
        tx.ledger(tenant.id).claim_due_reminders(TODAY, (5, 3, 1))
    before = (dict(storage.tables.customers), dict(storage.tables.subscriptions), dict(storage.tables.reminders))
    again = sync(storage, text)
    assert again.counts == ImportCounts(unchanged=again.rows)
    assert (storage.tables.customers, storage.tables.subscriptions, storage.tables.reminders) == before


@settings(max_examples=60, deadline=None)
@given(st.lists(ROW, max_size=12), st.lists(ROW, max_size=12))
def test_a_full_sync_leaves_exactly_the_successors_rows_active(
    first: list[tuple[str, str, str, str]], second: list[tuple[str, str, str, str]]
) -> None:
    storage = FakeStorage()
    tenant = storage.add_tenant("acme")
    sync(storage, csv_text(*unique_rows(first)))
    successor = unique_rows(second)
    sync(storage, csv_text(*successor), full_sync=True, max_removals_percent=None)
    wanted = {(line.split(",")[0], line.split(",")[1] or None) for line in successor}
    assert active(storage, tenant) == wanted


def test_a_reimport_takes_rows_unchanged_since_their_import_without_validating_them(
    storage: FakeStorage, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = csv_text(row("ada", "fiber"), row("ada", "tv"), row("bob"))
    sync(storage, text)
    validated: list[int] = []
    original = customers_service.validated_rows

    def counting(rows: Any, *args: Any) -> Any:
        rows = list(rows)
        validated.extend(r.line for r in rows)
        return original(rows, *args)

    monkeypatch.setattr(customers_service, "validated_rows", counting)
    again = sync(storage, csv_text(row("ada", "fiber"), row("ada", "tv"), row("bob", expires="2027-03-05")))

    assert again.counts == ImportCounts(updated=1, renewed=1, unchanged=2)
    assert validated == [4]  # bob's renewal; ada's two rows were recognised by their digests


@pytest.mark.parametrize("chunk_rows", [1, 5000])
def test_a_repeat_of_an_unchanged_row_is_rejected_as_a_repeat(
    storage: FakeStorage, tenant: Tenant, chunk_rows: int
) -> None:
    sync(storage, csv_text(row("ada"), row("bob")))

    with pytest.raises(ImportRefused) as refused:
        sync(storage, csv_text(row("ada"), row("bob"), row("ada")), chunk_rows=chunk_rows)

    assert refused.value.problems == ["line 4: external_ref 'ada' repeats line 2"]


@pytest.mark.parametrize("chunk_rows", [1, 5000])
@pytest.mark.parametrize("changed_first", [False, True])
def test_an_unchanged_row_is_checked_with_its_customers_changed_rows(
    storage: FakeStorage, tenant: Tenant, chunk_rows: int, changed_first: bool
) -> None:
    """Wherever the changed row is, in whichever chunk: the file must not contradict itself."""
    sync(storage, csv_text(row("ada", "fiber"), row("ada", "tv"), row("bob")))
    rows = [row("ada", "fiber"), row("ada", "tv", name="Ada L."), row("bob")]
    if changed_first:
        rows[:2] = rows[1::-1]

    with pytest.raises(ImportRefused) as refused:
        sync(storage, csv_text(*rows), chunk_rows=chunk_rows)

    assert refused.value.problems == ["line 3: customer 'ada': name, phone, opted_out or locale differ from line 2"]
    # The later of the two is rejected: the changed row, or the kept one taken as stored.
    expected = ImportCounts(updated=1, unchanged=1) if changed_first else ImportCounts(unchanged=2)
    assert refused.value.report.counts == expected


def test_progress_is_reported_every_chunk_of_rows_read_and_at_the_end(storage: FakeStorage, tenant: Tenant) -> None:
    text = csv_text(*(row(f"c{i}") for i in range(5)))
    for _ in range(2):  # a first import, then a re-import whose rows are all recognised
        seen: list[int] = []
        with storage() as tx:
            rows = source_rows(csv_files.read_rows(text))
            sync_customers(tx, "acme", rows, ImportOptions(chunk_rows=2), progress=seen.append)
        assert seen == [2, 4, 5]


def test_another_default_region_validates_the_rows_again(storage: FakeStorage, tenant: Tenant) -> None:
    national = f"{HEADER}\nada,,Ada,0612345678,Fiber 100,29.95,EUR,2026-03-05\n"
    assert sync(storage, national, region="NL").counts == ImportCounts(created=1)

    with pytest.raises(ImportRefused, match="line 2: phone"):
        sync(storage, national, region="US")


def test_a_row_changed_since_its_import_is_validated_and_compared_again(storage: FakeStorage, tenant: Tenant) -> None:
    text = f"{HEADER},opted_out\n{row('ada')},true\n{row('bob')},false\n"
    sync(storage, text)
    with storage() as tx:
        ada = tx.catalog.find_customer(tenant.id, "ada")
        assert ada is not None
        tx.catalog.set_opted_out(tenant.id, ada.id, False)  # an operator opts her back in

    assert sync(storage, text).counts == ImportCounts(updated=1, unchanged=1)  # the tenant's file says out


def test_an_import_never_undoes_a_customers_own_opt_out(storage: FakeStorage, tenant: Tenant) -> None:
    sync(storage, csv_text(row("ada")))
    with storage() as tx:
        ada = tx.catalog.find_customer(tenant.id, "ada")
        assert ada is not None
        tx.catalog.set_opted_out(tenant.id, ada.id, True)  # she replied STOP

    sync(storage, csv_text(row("ada", expires="2027-03-05")))

    with storage() as tx:
        ada = tx.catalog.find_customer(tenant.id, "ada")
        assert ada is not None and ada.opted_out


def test_a_locale_column_gives_each_customer_their_language_in_cldrs_spelling(
    storage: FakeStorage, tenant: Tenant
) -> None:
    text = f"{HEADER},locale\n{row('ada')},fr-be\n{row('bob')},\n{row('cy')},nl_BE\n"
    assert sync(storage, text).counts == ImportCounts(created=3)
    locales = {c.external_ref: c.locale for c in storage.tables.customers.values() if c.tenant_id == tenant.id}
    assert locales == {"ada": "fr_BE", "bob": None, "cy": "nl_BE"}  # empty: the tenant's locale

    changed = f"{HEADER},locale\n{row('ada')},fr-be\n{row('bob')},de_DE\n{row('cy')},nl_BE\n"
    assert sync(storage, changed).counts == ImportCounts(updated=1, unchanged=2)  # the digest covers the locale


@pytest.mark.parametrize("bad", ["xx", "nl_XX", "en_US.UTF-8", "Dutch"])
def test_a_locale_cldr_does_not_know_rejects_its_row(storage: FakeStorage, tenant: Tenant, bad: str) -> None:
    text = f"{HEADER},locale\n{row('ada')},{bad}\n{row('bob')},nl\n"
    with pytest.raises(ImportRefused, match=f"line 2: locale '{bad}' must be a CLDR locale such as nl_NL, fr_BE or en"):
        sync(storage, text)
