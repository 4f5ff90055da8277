"""The storage ports in memory: :class:`FakeStorage` is a ``UnitOfWorkFactory`` over fake tables.

A unit of work is all-or-nothing like a PostgreSQL transaction: it snapshots the tables when it begins
and puts them back if its block raises. Units of work run one at a time (a lock, held for the whole
block), which is what lets a snapshot be restored without losing another's commit; the SQL locks
(``lock_for_dispatch``...) are therefore no-ops. A nested unit of work on the same thread is allowed
but not isolated from its outer one. Tests make the database fail with :meth:`FakeStorage.fail_next`,
seed data with :meth:`FakeStorage.add_tenant` / :meth:`FakeStorage.add_customers`, and inspect or age
the ledger with :meth:`FakeStorage.reminders` / :meth:`FakeStorage.age_reminders`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, Literal

from tenant_worker.domain.localtime import SendingWindow
from tenant_worker.domain.model import TenantSpec
from tenant_worker.domain.ports import SYSTEM_CLOCK, Clock
from tenant_worker.domain.records import CustomerRecord, ImportCounts, ReminderView, Template, Tenant
from tenant_worker.domain.storage import StorageUnavailable
from tests.fakes.catalog import FakeCatalog
from tests.fakes.ledger import FakeLedger
from tests.fakes.maintenance import FakeLedgerMaintenance
from tests.fakes.receipts import FakeDeliveryReceipts
from tests.fakes.tables import REMINDER_COLUMNS, Snapshot, Tables, check_reminder
from tests.seeding import seed_customers

FailurePoint = Literal["begin", "statement", "commit"]
# The template a seeded tenant gets (short, using every placeholder a send job fills).
SEED_TEMPLATE = "Hi {customer_name}, your {plan} expires on {expires_on} ({days_left} days). Pay {amount}."
_TIMESTAMPS = ("created_at", "updated_at", "enqueued_at", "send_started_at", "sent_at")
# A unit of work waiting this long for another is a test that deadlocked itself: say so.
_LOCK_TIMEOUT = 10.0


class FakeStorage:
    """``domain.storage.UnitOfWorkFactory`` in memory: ``with storage() as tx: ...``.

    ``clock`` gives the ledger's timestamps (``SystemClock`` by default; pass a ``FakeClock`` to
    control them). ``commits`` and ``rollbacks`` count finished units of work."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self.tables = Tables()
        self.lock = threading.RLock()
        self.commits = 0
        self.rollbacks = 0
        self._failures: deque[FailurePoint] = deque()
        self._slugs = itertools.count(1)

    def __call__(self) -> FakeUnitOfWork:
        """A new unit of work (one transaction)."""
        return FakeUnitOfWork(self)

    def fail_next(self, times: int = 1, *, at: FailurePoint = "statement") -> None:
        """Make the next ``times`` units of work lose their connection, raising ``StorageUnavailable``:
        at ``begin`` (nothing runs), at their first ``statement`` (a port call; the block is rolled
        back), or at ``commit`` (the block ran, then everything it wrote is rolled back)."""
        with self.lock:
            self._failures.extend([at] * times)

    @property
    def failures_left(self) -> int:
        """Injected failures not yet struck."""
        with self.lock:
            return len(self._failures)

    def take_failure(self, at: FailurePoint) -> bool:
        """Whether the next injected failure strikes at ``at`` now (it is used up if so)."""
        with self.lock:
            if self._failures and self._failures[0] == at:
                self._failures.popleft()
                return True
            return False

    # Seeding and inspection: straight on the tables (no injected failure strikes), for test set-up.

    def add_tenant(
        self, slug: str | None = None, *, template: str | None = SEED_TEMPLATE, shard_count: int = 16, **spec: Any
    ) -> Tenant:
        """Create a tenant as ``services.tenants.create_tenant`` does (validated spec, one default
        template). ``spec`` overrides :class:`TenantSpec` fields; by default no quiet hours, windows 5,3,1."""
        fields: dict[str, Any] = {
            "name": "Acme Fiber",
            "timezone": "Europe/Amsterdam",
            "originator": "AcmeFiber",
            "sending_window": SendingWindow(dt.time(0), dt.time(0)),
            **spec,
        }
        tenant_spec = TenantSpec(slug or f"tenant-{next(self._slugs)}", **fields).validated()
        with FakeUnitOfWork(self, faults=False) as tx:
            tenant = tx.catalog.create_tenant(tenant_spec, shard_count)
            if template is not None:
                tx.catalog.save_template(tenant.id, Template(None, None, template))
            return tenant

    def add_customers(self, tenant: Tenant | int, records: Sequence[CustomerRecord]) -> ImportCounts:
        """Import customers with their subscription (``tests.seeding``: ``Catalog.import_rows``)."""
        tenant_id = tenant if isinstance(tenant, int) else tenant.id
        with FakeUnitOfWork(self, faults=False) as tx:
            return seed_customers(tx, tenant_id, records)

    def reminders(self, tenant: Tenant | int | None = None, status: str | None = None) -> list[ReminderView]:
        """Ledger rows (of one tenant, with one status), oldest first."""
        tenant_id = tenant if tenant is None or isinstance(tenant, int) else tenant.id
        with self.lock:
            rows = sorted(self.tables.reminders.values(), key=lambda row: row.id)
        return [
            row
            for row in rows
            if (tenant_id is None or row.tenant_id == tenant_id) and (status is None or row.status == status)
        ]

    def reminder(self, reminder_id: int) -> ReminderView:
        """One ledger row."""
        with self.lock:
            return self.tables.reminders[reminder_id]

    def update_reminders(self, reminder_ids: Iterable[int], **columns: Any) -> None:
        """Set ledger columns directly (what an SQL test does with a raw ``UPDATE``)."""
        unknown = set(columns) - REMINDER_COLUMNS
        if unknown:
            raise ValueError(f"not a reminders column: {sorted(unknown)}")
        with self.lock:
            for reminder_id in reminder_ids:
                row = self.tables.reminders[reminder_id]
                self.tables.reminders[reminder_id] = check_reminder(dataclasses.replace(row, **columns))

    def age_reminders(self, by: dt.timedelta, reminder_ids: Iterable[int] | None = None) -> None:
        """Move every timestamp of these rows (default: all) ``by`` into the past, as if they were
        written that long ago: a claim turns stale, a publication old. A claim's token moves too,
        so its task no longer holds the rows (as after a recovery tick)."""
        with self.lock:
            ids = list(self.tables.reminders) if reminder_ids is None else list(reminder_ids)
            for reminder_id in ids:
                row = self.tables.reminders[reminder_id]
                aged = {name: getattr(row, name) - by for name in _TIMESTAMPS if getattr(row, name) is not None}
                self.tables.reminders[reminder_id] = dataclasses.replace(row, **aged)


class FakeUnitOfWork:
    """``domain.storage.UnitOfWork`` on a :class:`FakeStorage`: one all-or-nothing block."""

    def __init__(self, storage: FakeStorage, *, faults: bool = True) -> None:
        self._storage = storage
        self._faults = faults
        self._snapshot: Snapshot | None = None
        self._now: dt.datetime | None = None
        self.catalog = FakeCatalog(self)
        self.maintenance = FakeLedgerMaintenance(self)
        self.receipts = FakeDeliveryReceipts(self)

    def __enter__(self) -> FakeUnitOfWork:
        storage = self._storage
        if not storage.lock.acquire(timeout=_LOCK_TIMEOUT):
            raise RuntimeError("a unit of work waited 10 s for another: does a test hold one while it waits?")
        if self._faults and storage.take_failure("begin"):
            storage.lock.release()
            raise StorageUnavailable("database connection lost (injected at begin)")
        self._snapshot = storage.tables.snapshot()
        self._now = storage.clock.now()
        return self

    def ledger(self, tenant_id: int) -> FakeLedger:
        """The tenant's ledger in this unit of work."""
        self._active()
        return FakeLedger(self, tenant_id)

    @property
    def tables(self) -> Tables:
        """The tables, as this unit of work sees them."""
        self._active()
        return self._storage.tables

    def statement(self) -> None:
        """Where an injected ``statement`` failure strikes."""
        self._active()
        if self._faults and self._storage.take_failure("statement"):
            raise StorageUnavailable("database connection lost (injected at statement)")

    def transaction_now(self) -> dt.datetime:
        """The instant this unit of work began (PostgreSQL's ``now()``)."""
        self._active()
        assert self._now is not None
        return self._now

    def wall_now(self) -> dt.datetime:
        """The storage clock's current instant."""
        return self._storage.clock.now()

    def _active(self) -> None:
        if self._snapshot is None:
            raise RuntimeError("the unit of work is used outside its `with` block")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        storage, snapshot, self._snapshot = self._storage, self._snapshot, None
        assert snapshot is not None
        try:
            lost = exc is None and self._faults and storage.take_failure("commit")
            if exc is None and not lost:
                storage.commits += 1
                return
            storage.tables.restore(snapshot)
            storage.rollbacks += 1
            if lost:
                raise StorageUnavailable("database connection lost (injected at commit)")
        finally:
            storage.lock.release()
