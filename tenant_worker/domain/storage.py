"""The storage ports: the catalog, the reminder ledger, and the unit of work that holds them.

Services see only these protocols. ``adapters.sql_storage`` implements them on PostgreSQL and the unit
tests' fakes in memory; one contract test suite (``tests/contract``) runs against both, so the fakes
cannot drift from the real thing.

A :class:`UnitOfWork` is one transaction: entering it begins, leaving it normally commits, leaving it
with an exception rolls back. The ledger is reached per tenant (``uow.ledger(tenant_id)``): every
statement of a tenant's ledger is bound to that tenant, so a service holding tenant A's ledger cannot
read or change tenant B's rows. Only :class:`LedgerMaintenance` (the recovery tick) spans tenants, and
it returns each row's tenant so the caller can report per tenant.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Protocol

from tenant_worker.domain.delivery import DeliveryReport, RecordedReport
from tenant_worker.domain.model import TenantSpec, TenantStatus
from tenant_worker.domain.records import (
    CustomerView,
    DayCount,
    DueReminder,
    ImportChunk,
    ImportPlan,
    LedgerWrite,
    PruneCursor,
    PrunedBatch,
    ReminderQuery,
    ReminderView,
    RepairedRow,
    SendJob,
    Template,
    Tenant,
)


class StorageUnavailable(RuntimeError):
    """The database could not be reached or dropped the connection (a failover, a network cut).

    Raised by the storage adapters in place of their driver's connection errors, so services can
    retry idempotent work or defer a send without knowing which database they run on. Errors that
    are not about the connection (a constraint, a bug in a statement) are not translated."""


class Catalog(Protocol):
    """Tenants, their SMS templates, customers and subscriptions."""

    def create_tenant(self, spec: TenantSpec, shard_count: int) -> Tenant:
        """Insert a validated tenant on its queue (a shard of ``shard_count``, or its own); a slug in
        use is a ``ValidationError``."""
        ...

    def find_tenant(self, slug: str, *, lock: bool = False) -> Tenant:
        """The tenant with ``slug`` (``lock``: held until the unit of work ends), or a
        ``ValidationError`` naming it."""
        ...

    def get_tenant(self, tenant_id: int) -> Tenant:
        """The tenant with this id (tasks carry ids, so renames are safe), or a ``ValidationError``."""
        ...

    def list_tenants(self, status: TenantStatus | None = None, ids: Sequence[int] | None = None) -> list[Tenant]:
        """Tenants ordered by slug, optionally only those with ``status`` or among ``ids``."""
        ...

    def save_tenant(self, tenant: Tenant) -> None:
        """Write the tenant's changeable fields (see ``records.TENANT_MUTABLE_FIELDS``) if any changed."""
        ...

    def purge_tenant(self, tenant_id: int) -> None:
        """Delete the tenant and everything of it (templates, customers, subscriptions, ledger)."""
        ...

    def tenant_queues(self) -> dict[str, list[str]]:
        """Every queue some tenant is assigned to, with the slugs on it (sorted)."""
        ...

    def templates(self, tenant_id: int) -> list[Template]:
        """All templates of the tenant, ordered by window then locale (any last)."""
        ...

    def save_template(self, tenant_id: int, template: Template) -> None:
        """Create or replace the template of its (window, locale); validate it before calling this."""
        ...

    def delete_template(self, tenant_id: int, window_days: int | None, locale: str | None) -> None:
        """Delete the template of (window, locale), if any."""
        ...

    # Single customer operations (``services.customer_ops``).

    def find_customer(self, tenant_id: int, external_ref: str, *, lock: bool = False) -> CustomerView | None:
        """The customer with ``external_ref`` and their subscriptions, or None (``lock``: the customer's
        row is held until the unit of work ends)."""
        ...

    def remove_customer(self, tenant_id: int, customer_id: int) -> bool:
        """Set ``removed_at`` (now) on the customer and their subscriptions where it is not set yet
        (the sweep claims nothing for them any more); whether anything changed."""
        ...

    def set_opted_out(self, tenant_id: int, customer_id: int, opted_out: bool) -> bool:
        """Opt the customer out, recording when (``opted_out_at``), or back in; whether it changed.

        Two flags make a customer opted out: ``opted_out``, the tenant's (the import's column), and
        ``opted_out_at``, the customer's own decision (a STOP reply, the CLI, the API), which no import
        clears. Opting out sets the second; opting back in clears both."""
        ...

    def erase_customer(self, tenant_id: int, customer_id: int, token: str) -> None:
        """Erase the customer's personal data: name emptied, phone NULL, ``external_ref`` replaced by
        ``token``, each subscription's ``external_ref`` by ``erased-<id>``; ``erased_at`` and
        ``removed_at`` (customer and subscriptions) set, and the customer opted out."""

    # Customer sync: the streaming, set-based import.

    def import_rows(
        self,
        tenant_id: int,
        chunks: Iterable[ImportChunk],
        *,
        full_sync: bool,
        approve: Callable[[ImportPlan], bool],
    ) -> tuple[ImportPlan, bool]:
        """Stage every chunk's (line, record) rows, compare it with the tenant's customers and
        subscriptions (keyed by ``external_ref`` and ``subscription_ref``), and pass the
        :class:`ImportPlan` to ``approve``; apply it only if that returns True. Returns the plan and
        whether it was applied.

        Applying writes only rows that change (an unchanged one keeps ``updated_at`` and its
        reminders), clears ``removed_at`` of rows the file brings back, and leaves out the plan's
        rejects. ``full_sync``: subscriptions and customers absent from the file get ``removed_at``
        and their pending reminders become ``skipped`` ('removed'). All in the caller's unit of work.

        A staged row's source digest is stored with its subscription (with the state it wrote), so
        that ``unchanged_digests`` can name it; a chunk's ``kept`` rows are taken as the stored rows
        they name and its ``unchanged`` digests count as unchanged and present (see :class:`ImportChunk`)."""
        ...

    def unchanged_digests(self, tenant_id: int) -> set[int]:
        """The source digests of the tenant's subscriptions whose customer and subscription are
        still exactly what the import that stored the digest wrote (not removed, nothing changed
        since by any path): a row with such a digest needs no validation and no write."""
        ...


class Ledger(Protocol):
    """One tenant's reminder ledger: the source of truth for what was claimed, sent and why."""

    @property
    def tenant_id(self) -> int:
        """The tenant every statement is bound to."""
        ...

    def lock_for_dispatch(self) -> None:
        """Serialise publishing of the tenant's batches until the unit of work ends, so two batches
        finishing at once cannot both see room for more and exceed the per-tenant bound."""
        ...

    def lock_for_sweep_and_dispatch(self) -> None:
        """The sweep lock, then the dispatch lock (continuations take only the latter: no deadlock)."""
        ...

    def claim_due_reminders(self, today: dt.date, windows: Sequence[int]) -> list[tuple[int, str]]:
        """Record the reminders due on tenant-local ``today`` (``domain.windows.due_window``); returns
        (id, status) of rows created now: ``pending``, or ``skipped`` with a reason."""
        ...

    def preview_due_reminders(self, today: dt.date, windows: Sequence[int]) -> list[DueReminder]:
        """What :meth:`claim_due_reminders` would record, writing nothing."""
        ...

    def subscription_jobs(self, subscription_ids: Sequence[int]) -> dict[int, SendJob]:
        """Render data of these subscriptions (a dry run), by subscription id; reminder id 0."""
        ...

    def outstanding(self, published_before: dt.datetime) -> int:
        """Reminders whose task is queued or running: ``sending``, or ``pending`` published at or
        after ``published_before``."""
        ...

    def count_unpublished(self, published_before: dt.datetime) -> int:
        """Pending reminders with no live task: never published, or published before
        ``published_before`` (the task must be lost)."""
        ...

    def stamp_unpublished(self, published_before: dt.datetime, limit: int) -> list[int]:
        """Mark the oldest ``limit`` pending reminders with no live task as published now; their ids."""
        ...

    def published_pending(self, published_after: dt.datetime) -> list[int]:
        """Pending reminders published at or after ``published_after`` (their task is queued), by id."""
        ...

    def mark_enqueued(self, reminder_ids: Sequence[int], enqueued: bool = True) -> None:
        """Remember that a task for these reminders is (``enqueued=False``: is not) published."""
        ...

    def defer_pending(self, reminder_ids: Sequence[int]) -> int:
        """Mark these reminders, if still pending, unpublished (quiet hours, a paused gateway)."""
        ...

    def cancel_pending(self, skip_reason: str) -> int:
        """Every pending reminder becomes ``skipped`` with ``skip_reason``, atomically against a send
        task's claim (none of them is sent afterwards); returns how many."""
        ...

    def start_sending(self, reminder_ids: Sequence[int]) -> list[SendJob]:
        """Move the still-``pending`` ones to ``sending`` (attempts + 1) and return their jobs, by id.
        All carry the same ``claimed_at``, the claim's token."""
        ...

    def mark_started(self, reminder_ids: Sequence[int], claimed_at: dt.datetime) -> set[int]:
        """Record that these rows' requests may start now; returns the ids this claim still holds."""
        ...

    def finish_many(self, outcomes: Sequence[LedgerWrite], claimed_at: dt.datetime | None) -> None:
        """Record outcomes of rows this claim holds in ``sending`` (others are left alone, so running
        it twice changes nothing). A ``sent`` row gets ``sent_at``, a ``pending`` one ``enqueued_at``
        (now) unless given; a column outside ``records.OUTCOME_COLUMNS`` is a ``ValueError``."""
        ...

    def count_status(self, status: str) -> int:
        """How many of the tenant's reminders have ``status``."""
        ...

    def count_ended(self, status: str, since: dt.datetime | None) -> int:
        """Reminders with ``status`` (a closed one) that ended at or after ``since``."""
        ...

    def reopen(self, status: str, since: dt.datetime | None) -> list[int]:
        """Closed ``status`` reminders (ended at or after ``since``) back to ``pending``, unpublished,
        attempts 0, the previous error kept behind a "sent again" note; their ids."""
        ...

    def list_reminders(self, status: str | None = None, limit: int = 1000) -> list[ReminderView]:
        """The newest ``limit`` rows (with ``status``), newest first."""
        ...

    # The HTTP API's ledger views (``services.reminder_views``).

    def page_reminders(self, query: ReminderQuery) -> list[ReminderView]:
        """Up to ``query.limit`` rows matching ``query``'s filters with an id below ``query.before_id``,
        newest first (see :class:`ReminderQuery`)."""
        ...

    def count_by_day(self, since: dt.date, until: dt.date) -> list[DayCount]:
        """Reminders claimed from ``since`` to ``until`` (tenant-local days, inclusive), counted per day,
        status and delivery status; combinations with no rows are left out."""
        ...

    # Single customer operations (``services.customer_ops``).

    def reminders_of(self, subscription_ids: Sequence[int], *, lock: bool = False) -> list[ReminderView]:
        """Every reminder of these subscriptions, by id (``lock``: held until the unit of work ends, so
        no send task can take or record them meanwhile)."""
        ...

    def cancel_pending_of(self, subscription_ids: Sequence[int], skip_reason: str) -> int:
        """:meth:`cancel_pending` for these subscriptions' reminders only; returns how many."""
        ...

    def erase_reminders_of(self, subscription_ids: Sequence[int]) -> int:
        """Clear what may identify the customer on these subscriptions' reminders (``body``,
        ``provider_message_id``, ``last_error``), keeping status, window and dates; returns how many rows."""
        ...


class LedgerMaintenance(Protocol):
    """Cross-tenant repairs for the recovery tick; each reads an index by age or by tenant."""

    def repair_stale_sending(self, claimed_before: dt.datetime, max_attempts: int, limit: int) -> list[RepairedRow]:
        """Settle up to ``limit`` rows claimed before ``claimed_before`` and still ``sending``:
        started -> ``unknown``; not started -> ``pending`` unpublished, or ``failed`` after
        ``max_attempts`` attempts."""
        ...

    def forget_publications(self) -> int:
        """Mark every published ``pending`` reminder unpublished (the broker lost its tasks)."""
        ...

    def tenants_with_lost_tasks(self, published_before: dt.datetime) -> list[int]:
        """Tenants with reminders published before ``published_before`` and still pending."""
        ...

    def tenants_with_unpublished(self) -> list[int]:
        """Tenants with pending reminders never published."""
        ...

    # Retention (``ledger prune``).

    def prune(self, older_than: dt.datetime, limit: int, after: PruneCursor | None = None) -> PrunedBatch:
        """Examine the next ``limit`` closed rows last changed before ``older_than`` (oldest first, after
        ``after``) and delete those the window rule no longer needs: of a past cycle (their
        ``expires_on`` is not their subscription's) or of a removed subscription or customer. No row
        of a subscription's current expiry is ever deleted; open (pending, sending) rows are never
        examined."""
        ...

    def count_prunable(self, older_than: dt.datetime) -> int:
        """How many rows :meth:`prune` would delete with this cut-off and no limit."""
        ...


class DeliveryReceipts(Protocol):
    """What MessageBird's webhooks write and look up across tenants: a status report names a message
    (its id and our reference), not a tenant, and a reply names a phone number."""

    def record_reports(self, reports: Sequence[DeliveryReport]) -> list[RecordedReport]:
        """Record each report on its reminder (``reference`` = reminder id, and ``provider_message_id``
        = the report's message id, so a guessed reference touches nothing) if it supersedes what is
        recorded (``domain.delivery.supersedes``), atomically against a concurrent report: a duplicate
        or a late lower status changes nothing. Returns the reports (the objects given) that changed a row."""
        ...

    def tenants_for_number(self, number: str) -> list[str]:
        """Slugs of the tenants whose originator is the phone ``number`` (digits compared; alphanumeric
        originators receive no replies)."""
        ...

    def customers_with_phone(self, tenant_id: int, phone: str) -> list[str]:
        """External references of the tenant's customers with this E.164 phone, not erased."""
        ...


class UnitOfWork(Protocol):
    """One transaction over the catalog and the ledger (see the module docs)."""

    @property
    def catalog(self) -> Catalog:
        """Tenants, templates and customers, in this transaction."""
        ...

    @property
    def maintenance(self) -> LedgerMaintenance:
        """The recovery tick's cross-tenant statements, in this transaction."""
        ...

    @property
    def receipts(self) -> DeliveryReceipts:
        """The webhooks' cross-tenant statements (status reports, replies), in this transaction."""
        ...

    def ledger(self, tenant_id: int) -> Ledger:
        """The ledger of one tenant, in this transaction."""
        ...

    def __enter__(self) -> UnitOfWork: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


# What services take: a new unit of work per transaction (``with uow() as tx: ...``).
UnitOfWorkFactory = Callable[[], UnitOfWork]
