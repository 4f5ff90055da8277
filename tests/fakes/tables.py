"""The fake database: the tables of ``adapters.orm`` as dicts of frozen rows.

Rows are frozen and replaced on every write, so a unit of work snapshots the whole state by copying
the dicts (not the rows): cheap enough to take on every ``with uow()``, even with thousands of rows.
The constraints a service could break are checked here as PostgreSQL checks them (a unique slug, a
reminder's status, a skipped reminder's reason); the rest the ports make impossible.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Protocol

from tenant_worker.domain.model import ReminderStatus
from tenant_worker.domain.records import ReminderView, Tenant


class ConstraintViolation(Exception):
    """A write PostgreSQL would refuse with an ``IntegrityError`` (the fake's stand-in for it)."""


@dataclass(frozen=True)
class CustomerRow:
    """A row of ``customers``."""

    id: int
    tenant_id: int
    external_ref: str
    name: str
    phone: str | None
    opted_out: bool
    # Migration 0007: removed (by `customers remove`, a full sync), erased (right to erasure); when it
    # last changed (the sync's "unchanged rows are not rewritten").
    removed_at: dt.datetime | None = None
    erased_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    # Migration 0010: when the customer opted out (STOP, the CLI, the API); an import never undoes it.
    opted_out_at: dt.datetime | None = None
    # Migration 0013: the customer's CLDR locale; None means the tenant's.
    locale: str | None = None


@dataclass(frozen=True)
class SubscriptionRow:
    """A row of ``subscriptions``: unique per (customer, ``external_ref``), None counting as one value."""

    id: int
    tenant_id: int
    customer_id: int
    plan: str
    amount: Decimal
    currency: str
    expires_on: dt.date
    status: str
    # Migration 0007: the billing platform's reference (None: the customer's one subscription), when it
    # was removed, when it last changed.
    external_ref: str | None = None
    removed_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    # Migration 0011: the source digest of the import row that last wrote it, and what it wrote (the
    # SQL stores a hash of these values; the fake keeps the values).
    import_digest: int | None = None
    import_state: tuple[object, ...] | None = None


@dataclass(frozen=True)
class TemplateRow:
    """A row of ``sms_templates``; unique per (tenant, window, locale), None meaning "any"."""

    tenant_id: int
    window_days: int | None
    locale: str | None
    body: str


# A row of ``reminders`` (the ledger) is stored as the very record the ledger port hands out: their
# columns are the same, and a frozen dataclass is already an immutable table row.
ReminderRow = ReminderView


REMINDER_COLUMNS = frozenset(f.name for f in fields(ReminderRow)) - {"id", "tenant_id"}
_STATUSES = frozenset(status.value for status in ReminderStatus)


def check_reminder(row: ReminderRow) -> ReminderRow:
    """The ``reminders`` CHECK constraints (migration 0001)."""
    if row.status not in _STATUSES:
        raise ConstraintViolation(f"reminders_status_valid: {row.status!r}")
    if row.status == ReminderStatus.SKIPPED and row.skip_reason is None:
        raise ConstraintViolation(f"reminders_skip_has_reason: reminder {row.id}")
    return row


class Tables:
    """Every table; ids come from counters that, like PostgreSQL sequences, a rollback does not reset."""

    def __init__(self) -> None:
        self.tenants: dict[int, Tenant] = {}
        self.customers: dict[int, CustomerRow] = {}
        self.subscriptions: dict[int, SubscriptionRow] = {}
        self.templates: dict[tuple[int, int | None, str | None], TemplateRow] = {}
        self.reminders: dict[int, ReminderRow] = {}
        self.tenant_ids = itertools.count(1)
        self.customer_ids = itertools.count(1)
        self.subscription_ids = itertools.count(1)
        self.reminder_ids = itertools.count(1)

    def snapshot(self) -> Snapshot:
        """The state to restore if a unit of work fails (the rows themselves are immutable)."""
        return Snapshot(
            dict(self.tenants),
            dict(self.customers),
            dict(self.subscriptions),
            dict(self.templates),
            dict(self.reminders),
        )

    def restore(self, snapshot: Snapshot) -> None:
        """Put back a :meth:`snapshot`."""
        self.tenants = snapshot.tenants
        self.customers = snapshot.customers
        self.subscriptions = snapshot.subscriptions
        self.templates = snapshot.templates
        self.reminders = snapshot.reminders


@dataclass(frozen=True)
class Snapshot:
    """Copies of every table's dict, taken when a unit of work begins."""

    tenants: dict[int, Tenant]
    customers: dict[int, CustomerRow]
    subscriptions: dict[int, SubscriptionRow]
    templates: dict[tuple[int, int | None, str | None], TemplateRow]
    reminders: dict[int, ReminderRow]


class FakeSession(Protocol):
    """What the fake catalog and ledger need of their unit of work."""

    @property
    def tables(self) -> Tables:
        """The state, as this unit of work sees it."""
        ...

    def statement(self) -> None:
        """Called before each port method's work: where an injected connection failure strikes."""
        ...

    def transaction_now(self) -> dt.datetime:
        """PostgreSQL's ``now()``: the instant the transaction began, the same for all its statements."""
        ...

    def wall_now(self) -> dt.datetime:
        """The SQL adapters' own ``datetime.now(UTC)`` (``mark_enqueued``, ``finish_many``)."""
        ...
