"""The storage contract's two subjects: the in-memory fakes (``tests/fakes``) and the SQL adapters on a
real PostgreSQL. Every test in this package that takes ``storage`` runs once on each, so the fakes the
unit tests trust cannot drift from the real thing (dramatiq runs its broker tests over its stub and
Redis alike).

The SQL subject has a database of its own, emptied before each test: the recovery tick's statements act
on every tenant, so on the shared test database they would count, and repair, other tests' rows. Both
subjects therefore start each test empty and the assertions are exact. Tests still make their tenants
with unique slugs.

A few tests must put rows into a state no port method produces (a claim made two days ago); they do it
through :meth:`StorageUnderTest.set_reminders`, a raw ``UPDATE`` on SQL and a table edit on the fake.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from tenant_worker.adapters.db import session_factory
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.domain.localtime import SendingWindow
from tenant_worker.domain.model import TenantSpec
from tenant_worker.domain.records import CustomerRecord, ImportCounts, ReminderView, SendJob, Tenant
from tenant_worker.domain.storage import UnitOfWorkFactory
from tests.conftest import customer, own_database, unique_slug
from tests.fakes import FakeStorage
from tests.fakes.tables import REMINDER_COLUMNS
from tests.seeding import seed_customers

UTC = dt.UTC
SHARDS = 16
ALWAYS_OPEN = SendingWindow(dt.time(0), dt.time(0))


@pytest.fixture(scope="session")
def contract_sessions() -> Iterator[sessionmaker[Session]]:
    """Sessions on the contract suite's own database."""
    with own_database("tw_contract") as url:
        yield session_factory(url)


@dataclass
class StorageUnderTest:
    """One subject of the contract: its unit-of-work factory and the back door tests age rows through."""

    kind: str
    uow: UnitOfWorkFactory
    fake: FakeStorage | None = None
    sessions: sessionmaker[Session] | None = None

    def set_reminders(self, reminder_ids: Sequence[int], **columns: Any) -> None:
        """Set ledger columns directly, outside the ports (to make a claim or a publication old)."""
        unknown = set(columns) - REMINDER_COLUMNS
        assert not unknown, f"not a reminders column: {unknown}"
        if self.fake is not None:
            self.fake.update_reminders(reminder_ids, **columns)
            return
        assert self.sessions is not None
        assignments = ", ".join(f"{name} = :{name}" for name in columns)
        with self.sessions.begin() as session:
            session.execute(
                text(f"UPDATE reminders SET {assignments} WHERE id = ANY(:ids)"), {"ids": list(reminder_ids), **columns}
            )

    # Retention: removal as a full sync or ``customers remove`` leaves it (migration 0007's columns).

    def mark_removed(self, table: str, row_ids: Sequence[int], removed_at: dt.datetime) -> None:
        """Set ``removed_at`` on these ``customers`` or ``subscriptions`` rows, outside the ports."""
        assert table in ("customers", "subscriptions"), table
        if self.fake is not None:
            with self.fake.lock:
                rows: dict[int, Any] = getattr(self.fake.tables, table)
                for row_id in row_ids:
                    rows[row_id] = replace(rows[row_id], removed_at=removed_at)
            return
        assert self.sessions is not None
        with self.sessions.begin() as session:
            session.execute(
                text(f"UPDATE {table} SET removed_at = :at WHERE id = ANY(:ids)"),
                {"ids": list(row_ids), "at": removed_at},
            )


@pytest.fixture(params=["fake", "sql"])
def storage(request: pytest.FixtureRequest) -> StorageUnderTest:
    """The storage ports on the in-memory fakes, then on PostgreSQL; both empty."""
    if request.param == "fake":
        fake = FakeStorage()
        return StorageUnderTest("fake", fake, fake=fake)
    sessions: sessionmaker[Session] = request.getfixturevalue("contract_sessions")
    with sessions.begin() as session:
        session.execute(text("DELETE FROM tenants"))  # the schema cascades to everything else
    return StorageUnderTest("sql", sql_unit_of_work(sessions), sessions=sessions)


def now() -> dt.datetime:
    """The current instant: both subjects stamp rows with the real clock (the fake's default)."""
    return dt.datetime.now(UTC)


def tenant_spec(prefix: str = "c", windows: tuple[int, ...] = (5, 3, 1), **fields: Any) -> TenantSpec:
    """A valid tenant with a unique slug and no quiet hours."""
    values: dict[str, Any] = {"locale": "en", "windows": windows, "sending_window": ALWAYS_OPEN, **fields}
    return TenantSpec(unique_slug(prefix), "Acme Fiber", "Europe/Amsterdam", "AcmeFiber", **values).validated()


def numberless(record: CustomerRecord) -> CustomerRecord:
    """The customer without a phone number: the column is nullable (data written before imports
    validated numbers), though ``CustomerRecord.phone`` is typed ``str`` as the import always gives one."""
    return replace(record, phone=None)  # type: ignore[arg-type]


def new_tenant(storage: StorageUnderTest, prefix: str = "c", **fields: Any) -> Tenant:
    """Create a tenant through the catalog port."""
    with storage.uow() as tx:
        return tx.catalog.create_tenant(tenant_spec(prefix, **fields), SHARDS)


def import_customers(storage: StorageUnderTest, tenant: Tenant, records: Sequence[CustomerRecord]) -> ImportCounts:
    """Import customers through the catalog port (``tests.seeding``)."""
    with storage.uow() as tx:
        return seed_customers(tx, tenant.id, records)


TODAY = dt.date(2026, 3, 2)  # a tenant-local date the claims are made on; any date does


def pending(storage: StorageUnderTest, count: int, tenant: Tenant | None = None) -> tuple[Tenant, list[int]]:
    """A tenant with ``count`` reminders claimed for :data:`TODAY` (pending, unpublished); their ids."""
    tenant = tenant or new_tenant(storage)
    due = TODAY + dt.timedelta(days=3)
    import_customers(storage, tenant, [customer(f"{tenant.slug}-{i}", due) for i in range(count)])
    with storage.uow() as tx:
        claimed = tx.ledger(tenant.id).claim_due_reminders(TODAY, (5, 3, 1))
    assert [status for _, status in claimed] == ["pending"] * count
    return tenant, sorted(reminder_id for reminder_id, _ in claimed)


def claim(storage: StorageUnderTest, tenant: Tenant, ids: Sequence[int]) -> list[SendJob]:
    """What a send task does first: take the rows for sending (committed); their jobs."""
    with storage.uow() as tx:
        return tx.ledger(tenant.id).start_sending(ids)


def token(jobs: Sequence[SendJob]) -> dt.datetime:
    """The claim's token, the same on every job of it."""
    tokens = {job.claimed_at for job in jobs}
    assert len(tokens) == 1, tokens
    (claimed_at,) = tokens
    assert claimed_at is not None
    return claimed_at


def rows(storage: StorageUnderTest, tenant: Tenant) -> dict[int, ReminderView]:
    """The tenant's ledger rows by id, read through the port."""
    with storage.uow() as tx:
        return {row.id: row for row in tx.ledger(tenant.id).list_reminders()}
