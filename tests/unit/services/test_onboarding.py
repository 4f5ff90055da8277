"""Onboarding and offboarding a tenant (``services.onboarding``) on the in-memory fakes: what an operator
sees in the report, in the database and in beat's schedule store, with no PostgreSQL or Redis running."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tenant_worker.domain.model import ReminderStatus, TenantStatus, ValidationError
from tenant_worker.domain.records import CustomerRecord, Template, Tenant
from tenant_worker.domain.shards import all_shard_queues, shard_for
from tenant_worker.services.definitions import TenantDefinition, parse_definition
from tenant_worker.services.onboarding import offboard, onboard
from tenant_worker.services.schedules import ScheduleService
from tests.fakes import FakeClock, FakeScheduleStore, FakeStorage
from tests.fakes.clock import DEFAULT_START

# 2026-03-02 09:00 UTC is 10:00 in Amsterdam (CET): a Monday in winter time.
NOW = DEFAULT_START  # the clock fixture's start (conftest.py)
TODAY = dt.date(2026, 3, 2)
HEADER = "external_ref,name,phone,plan,amount,currency,expires_on"
GOOD_ROWS = (
    "c-1,Ada Lovelace,+31612345678,Fiber 100,29.95,EUR,2026-03-05",
    "c-2,Bob,+31612345679,Fiber 500,49.00,EUR,2026-03-07",
)
BAD_ROW = "c-3,Cy,call me,Fiber 100,29.95,EUR,2026-03-05"


def definition(**overrides: Any) -> TenantDefinition:
    """A valid definition of tenant "acme", with ``overrides`` (a key set to None is left out)."""
    data: dict[str, Any] = {
        "slug": "acme",
        "name": "Acme Fiber",
        "timezone": "Europe/Amsterdam",
        "originator": "AcmeFiber",
        "send_time": "10:00",
        "templates": [{"body": "Hi {customer_name}, your {plan} expires on {expires_on}."}],
    }
    data.update(overrides)
    return parse_definition({key: value for key, value in data.items() if value is not None})


def customers_csv(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "customers.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def store() -> FakeScheduleStore:
    return FakeScheduleStore()


def stored_tenant(storage: FakeStorage, slug: str = "acme") -> Tenant:
    with storage() as tx:
        return tx.catalog.find_tenant(slug)


def stored_templates(storage: FakeStorage, slug: str = "acme") -> list[Template]:
    with storage() as tx:
        return tx.catalog.templates(tx.catalog.find_tenant(slug).id)


# Onboarding --------------------------------------------------------------------------------------------


def test_tenants_onboarded_with_four_shards_land_on_one_of_the_four_shard_queues(storage, store, clock) -> None:
    slugs = [f"tenant-{n:02d}" for n in range(12)]

    for slug in slugs:
        onboard(storage, store, definition(slug=slug), shard_count=4, clock=clock)

    tenants = [stored_tenant(storage, slug) for slug in slugs]
    assert {t.queue for t in tenants} <= set(all_shard_queues(4))
    assert all(store.get(t.slug).queue == t.queue for t in tenants)
    # The catalog's own default (16 shards) would have put some of these tenants beyond shard 3.
    assert any(shard_for(t.id, 16) >= 4 for t in tenants)


def test_onboarding_creates_the_tenant_its_templates_its_customers_and_its_schedule(
    storage, store, clock, tmp_path
) -> None:
    report = onboard(storage, store, definition(), customers_csv(tmp_path, *GOOD_ROWS), shard_count=16, clock=clock)

    assert (report.created, report.changes, report.schedule) == (True, ["create tenant acme"], "created")
    assert report.customers == {"created": 2, "updated": 0, "renewed": 0, "unchanged": 0, "removed": 0}
    tenant = stored_tenant(storage)
    assert (tenant.name, tenant.timezone, tenant.send_time, tenant.status) == (
        "Acme Fiber",
        "Europe/Amsterdam",
        dt.time(10),
        TenantStatus.ACTIVE,
    )
    # The definition's template covers every window and locale, so no default is added.
    assert stored_templates(storage) == [
        Template(None, None, "Hi {customer_name}, your {plan} expires on {expires_on}.")
    ]
    entry = store.get("acme")
    assert entry is not None
    assert (entry.timezone, entry.send_time, entry.queue, entry.enabled) == (
        "Europe/Amsterdam",
        dt.time(10),
        tenant.queue,
        True,
    )


def test_a_new_tenants_first_run_is_its_next_local_send_time_after_now(storage, store, clock) -> None:
    clock.set(dt.datetime(2026, 3, 28, 12, 0, tzinfo=dt.UTC))  # the day before Amsterdam moves to summer time

    report = onboard(storage, store, definition(), shard_count=16, clock=clock)

    assert report.next_run_utc == "2026-03-29T08:00:00+00:00"
    assert report.next_run_local == "2026-03-29T10:00:00+02:00"


def test_a_run_due_right_now_is_not_reported_as_the_next_one(storage, store, clock) -> None:
    report = onboard(storage, store, definition(), shard_count=16, clock=clock)  # 10:00 in Amsterdam, exactly

    assert (report.next_run_utc, report.next_run_local) == ("2026-03-03T09:00:00+00:00", "2026-03-03T10:00:00+01:00")


def test_re_running_the_same_definition_changes_nothing(storage, store, clock, tmp_path) -> None:
    csv_path = customers_csv(tmp_path, *GOOD_ROWS)
    first = onboard(storage, store, definition(), csv_path, shard_count=16, clock=clock)
    tenant, entry = stored_tenant(storage), store.get("acme")
    clock.advance(dt.timedelta(hours=1))

    again = onboard(storage, store, definition(), csv_path, shard_count=16, clock=clock)

    assert (again.created, again.changes, again.schedule) == (False, [], "unchanged")
    assert again.customers == {"created": 0, "updated": 0, "renewed": 0, "unchanged": 2, "removed": 0}
    assert stored_tenant(storage) == tenant
    assert store.get("acme") == entry
    assert (again.next_run_utc, again.next_run_local) == (first.next_run_utc, first.next_run_local)


def test_a_changed_definition_lists_every_change_to_the_tenant_and_its_templates(storage, store, clock) -> None:
    onboard(
        storage,
        store,
        definition(
            templates=[
                {"body": "Hi {customer_name}, pay {amount} {currency}."},
                {"body": "Three days left, {customer_name}.", "window": 3},
                {"body": "Nog {days_left} dagen.", "locale": "nl"},
            ]
        ),
        shard_count=16,
        clock=clock,
    )

    report = onboard(
        storage,
        store,
        definition(
            name="Acme Fibre",
            send_time="11:30",
            templates=[
                {"body": "Hi {customer_name}, please pay {amount} {currency}."},
                {"body": "Nog {days_left} dagen.", "locale": "nl"},
                {"body": "Tomorrow, {customer_name}!", "window": 1},
            ],
        ),
        shard_count=16,
        clock=clock,
    )

    assert not report.created
    assert report.changes == [
        "name: Acme Fiber -> Acme Fibre",
        "send_time: 10:00:00 -> 11:30:00",
        "change template (window any, locale any)",
        "add template (window 1, locale any)",
        "delete template (window 3, locale any)",
    ]
    assert stored_templates(storage) == [
        Template(1, None, "Tomorrow, {customer_name}!"),
        Template(None, "nl", "Nog {days_left} dagen."),
        # Saved in the new spelling: {amount} carries its currency now (migration 0013).
        Template(None, None, "Hi {customer_name}, please pay {amount}."),
    ]
    assert report.schedule == "updated"
    assert store.get("acme").send_time == dt.time(11, 30)


@pytest.mark.parametrize(("before", "after"), [("shard", "dedicated"), ("dedicated", "shard")])
def test_a_definition_that_changes_the_queue_kind_is_refused_with_a_pointer_to_tenant_move(
    storage, store, clock, before: str, after: str
) -> None:
    onboard(storage, store, definition(queue=before), shard_count=16, clock=clock)
    tenant, entry = stored_tenant(storage), store.get("acme")

    with pytest.raises(ValidationError) as refused:
        onboard(storage, store, definition(queue=after, name="Acme Fibre"), shard_count=16, clock=clock)

    assert refused.value.problems == [
        f"tenant acme is on queue {tenant.queue}; change its queue with `tenant-worker tenant move`"
    ]
    assert stored_tenant(storage) == tenant
    assert store.get("acme") == entry


def test_a_dry_run_reports_what_it_would_do_and_writes_nothing(storage, store, clock, tmp_path) -> None:
    report = onboard(
        storage, store, definition(), customers_csv(tmp_path, *GOOD_ROWS), shard_count=16, dry_run=True, clock=clock
    )

    assert (report.dry_run, report.created, report.schedule) == (True, True, "create")
    assert report.customers == {"created": 2, "updated": 0, "renewed": 0, "unchanged": 0, "removed": 0}
    assert report.next_run_utc == "2026-03-03T09:00:00+00:00"
    assert (storage.tables.tenants, storage.tables.customers, storage.tables.templates) == ({}, {}, {})
    assert store.all() == {}


def test_a_dry_run_of_a_changed_definition_lists_the_changes_and_leaves_the_tenant_as_it_was(
    storage, store, clock
) -> None:
    onboard(storage, store, definition(), shard_count=16, clock=clock)
    tenant, templates, entry = stored_tenant(storage), stored_templates(storage), store.get("acme")

    report = onboard(storage, store, definition(send_time="08:30"), shard_count=16, dry_run=True, clock=clock)

    assert (report.changes, report.schedule) == (["send_time: 10:00:00 -> 08:30:00"], "update")
    assert (stored_tenant(storage), stored_templates(storage), store.get("acme")) == (tenant, templates, entry)


def test_a_csv_with_a_rejected_row_imports_nothing_and_writes_the_rejects_file(storage, store, clock, tmp_path) -> None:
    csv_path = customers_csv(tmp_path, GOOD_ROWS[0], BAD_ROW, GOOD_ROWS[1])

    with pytest.raises(ValidationError) as refused:
        onboard(storage, store, definition(), csv_path, shard_count=16, clock=clock)

    rejects_file = tmp_path / "customers.rejects.csv"
    assert refused.value.problems[0].startswith(f"{csv_path}: line 3: ")
    assert refused.value.problems[-1] == f"rejected rows written to {rejects_file}; nothing was imported"
    with rejects_file.open(newline="", encoding="utf-8") as rejects:
        [row] = list(csv.DictReader(rejects))
    assert (row["line"], row["external_ref"], row["phone"]) == ("3", "c-3", "call me")
    assert "phone number" in row["reason"]
    assert storage.tables.tenants == {} and storage.tables.customers == {}
    assert store.all() == {}


def test_allow_rejects_imports_the_good_rows_and_reports_the_rejected_ones(storage, store, clock, tmp_path) -> None:
    csv_path = customers_csv(tmp_path, GOOD_ROWS[0], BAD_ROW, GOOD_ROWS[1])

    report = onboard(storage, store, definition(), csv_path, shard_count=16, allow_rejects=True, clock=clock)

    assert (report.rejected, report.rejects_file) == (1, str(tmp_path / "customers.rejects.csv"))
    assert report.customers["created"] == 2
    assert sorted(row.external_ref for row in storage.tables.customers.values()) == ["c-1", "c-2"]


def test_an_unreadable_csv_names_the_file_and_imports_nothing(storage, store, clock, tmp_path) -> None:
    csv_path = tmp_path / "customers.csv"
    csv_path.write_text("external_ref,name\nc-1,Ada\n", encoding="utf-8")

    with pytest.raises(ValidationError) as refused:
        onboard(storage, store, definition(), csv_path, shard_count=16, clock=clock)

    assert refused.value.problems[0] == f"{csv_path}: line 1: missing column 'phone'"
    assert refused.value.problems[-1] == "nothing was imported"
    assert storage.tables.tenants == {} and store.all() == {}


def test_import_progress_is_reported_against_the_number_of_rows(storage, store, clock, tmp_path) -> None:
    seen: list[tuple[int, int]] = []

    onboard(
        storage,
        store,
        definition(),
        customers_csv(tmp_path, *GOOD_ROWS),
        shard_count=16,
        progress=lambda done, total: seen.append((done, total)),
        clock=clock,
    )

    assert seen[-1] == (2, 2)


# Offboarding -------------------------------------------------------------------------------------------


class HookedClock(FakeClock):
    """A fake clock that runs ``on_sleep(nth_sleep)`` after each wait: what a worker does meanwhile."""

    def __init__(self, start: dt.datetime) -> None:
        super().__init__(start)
        self.on_sleep: Any = None

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))


@pytest.fixture
def hooked() -> HookedClock:
    return HookedClock(NOW)


def customer(ref: str, days_left: int) -> CustomerRecord:
    phone = f"+316{int(ref.split('-')[1]):08d}"
    return CustomerRecord(
        ref, f"Customer {ref}", phone, "Fiber 100", Decimal("29.95"), "EUR", TODAY + dt.timedelta(days=days_left)
    )


def tenant_with_pending(storage: FakeStorage, store: FakeScheduleStore, count: int = 3) -> tuple[Tenant, list[int]]:
    """An active, scheduled tenant with ``count`` pending reminders claimed by today's sweep."""
    tenant = storage.add_tenant("acme")
    ScheduleService(storage, store).apply(tenant, now=NOW)
    storage.add_customers(tenant, [customer(f"c-{n}", 3) for n in range(1, count + 1)])
    with storage() as tx:
        claimed = tx.ledger(tenant.id).claim_due_reminders(TODAY, tenant.windows)
    assert [status for _id, status in claimed] == [ReminderStatus.PENDING] * count
    return tenant, [reminder_id for reminder_id, _status in claimed]


def start_sending(storage: FakeStorage, tenant: Tenant, reminder_id: int) -> dt.datetime:
    """A worker claims the reminder (pending -> sending); the claim's token."""
    with storage() as tx:
        [job] = tx.ledger(tenant.id).start_sending([reminder_id])
    assert job.claimed_at is not None
    return job.claimed_at


def finish(
    storage: FakeStorage, tenant: Tenant, reminder_id: int, claimed_at: dt.datetime, status: ReminderStatus
) -> None:
    """The worker records the send's outcome under its claim."""
    with storage() as tx:
        tx.ledger(tenant.id).finish_many([(reminder_id, status, {})], claimed_at)


def test_offboarding_pauses_the_tenant_cancels_its_pending_reminders_and_removes_the_schedule(
    storage, store, clock
) -> None:
    tenant, _ids = tenant_with_pending(storage, store)

    report = offboard(storage, store, "acme", clock=clock)

    assert report.as_dict() == {
        "tenant": "acme",
        "waited_for_sending": 0,
        "still_sending": 0,
        "cancelled_pending": 3,
        "schedule_removed": True,
        "purged": False,
    }
    assert {(r.status, r.skip_reason) for r in storage.reminders(tenant)} == {("skipped", "tenant_offboarded")}
    assert store.get("acme") is None
    kept = stored_tenant(storage)
    assert (kept.status, kept.scheduled) == (TenantStatus.PAUSED, False)
    assert clock.sleeps == []


def test_offboarding_waits_for_a_send_in_flight_and_keeps_its_outcome(storage, store, hooked) -> None:
    tenant, ids = tenant_with_pending(storage, store)
    claimed_at = start_sending(storage, tenant, ids[0])
    hooked.on_sleep = lambda n: n == 3 and finish(storage, tenant, ids[0], claimed_at, ReminderStatus.SENT)

    report = offboard(storage, store, "acme", purge=True, clock=hooked)

    assert (report.waited_for_sending, report.still_sending, report.cancelled_pending) == (1, 0, 2)
    assert hooked.sleeps == [0.2, 0.2, 0.2]
    assert report.purged
    assert storage.tables.tenants == {} and storage.tables.reminders == {}


def test_a_send_that_ends_in_a_retry_during_the_wait_is_cancelled_too(storage, store, hooked) -> None:
    tenant, ids = tenant_with_pending(storage, store)
    claimed_at = start_sending(storage, tenant, ids[0])
    hooked.on_sleep = lambda n: n == 1 and finish(storage, tenant, ids[0], claimed_at, ReminderStatus.PENDING)

    report = offboard(storage, store, "acme", clock=hooked)

    assert (report.waited_for_sending, report.still_sending, report.cancelled_pending) == (1, 0, 3)
    assert {(r.status, r.skip_reason) for r in storage.reminders(tenant)} == {("skipped", "tenant_offboarded")}


def test_a_send_still_running_at_the_drain_timeout_is_reported_and_nothing_is_purged(storage, store, clock) -> None:
    tenant, ids = tenant_with_pending(storage, store)
    start_sending(storage, tenant, ids[0])

    report = offboard(storage, store, "acme", purge=True, drain_timeout=5, clock=clock)

    assert (report.waited_for_sending, report.still_sending, report.purged) == (1, 1, False)
    assert report.schedule_removed
    assert 5 <= clock.slept < 5.5
    assert [r.status for r in storage.reminders(tenant)] == ["sending", "skipped", "skipped"]
    assert stored_tenant(storage).id == tenant.id


def test_purging_an_idle_tenant_deletes_it_with_everything_of_it_and_keeps_other_tenants(storage, store, clock) -> None:
    tenant_with_pending(storage, store)
    other = storage.add_tenant("other")
    storage.add_customers(other, [customer("c-9", 3)])

    report = offboard(storage, store, "acme", purge=True, clock=clock)

    assert report.purged and clock.sleeps == []
    assert [t.slug for t in storage.tables.tenants.values()] == ["other"]
    assert {row.tenant_id for row in storage.tables.customers.values()} == {other.id}
    assert storage.tables.reminders == {}
    assert {key[0] for key in storage.tables.templates} == {other.id}


def test_offboarding_an_unknown_tenant_is_a_clear_error(storage, store, clock) -> None:
    with pytest.raises(ValidationError, match="unknown tenant 'nobody'"):
        offboard(storage, store, "nobody", clock=clock)
