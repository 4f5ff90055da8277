"""The records the storage ports hand to the services: plain frozen dataclasses, no ORM in sight.

A service reads a :class:`Tenant`, changes it with :func:`dataclasses.replace` and gives it back to the
catalog; it never holds a database row, so the same service runs on PostgreSQL and on the in-memory
fakes of the unit tests.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tenant_worker.domain.localtime import SendingWindow
from tenant_worker.domain.model import ReminderStatus, TenantStatus
from tenant_worker.domain.windows import normalize_windows


@dataclass(frozen=True)
class Tenant:
    """An organisation whose customers receive reminders, as stored."""

    id: int
    slug: str
    name: str
    timezone: str
    locale: str
    originator: str
    windows: tuple[int, ...]
    status: str
    # The Celery queue of the tenant's tasks, fixed when the tenant is created (see domain.shards).
    queue: str
    rate_per_second: float | None
    max_segments: int
    send_time: dt.time
    window_start: dt.time
    window_end: dt.time
    # False once the schedule was removed on purpose, so `schedule sync` does not recreate it.
    scheduled: bool = True
    # How {expires_on} is written: CLDR's short, medium or long date format of the customer's locale.
    date_style: str = "long"
    # Whether the tenant's own text (template, plural forms, its name) is normalised to GSM-7 too;
    # formatted values always are (domain.gsm_text).
    normalize_text: bool = False

    @property
    def active(self) -> bool:
        """Whether the tenant is swept and sent for."""
        return self.status == TenantStatus.ACTIVE

    @property
    def sending_window(self) -> SendingWindow:
        """The local hours SMS may go out (quiet hours are everything outside them)."""
        return SendingWindow(self.window_start, self.window_end)

    @property
    def ordered_windows(self) -> tuple[int, ...]:
        """The windows in canonical (descending) order."""
        return normalize_windows(self.windows)


# The tenant fields a service may change through ``Catalog.save_tenant`` (id and slug are identity).
TENANT_MUTABLE_FIELDS = (
    "name",
    "timezone",
    "locale",
    "originator",
    "windows",
    "status",
    "queue",
    "rate_per_second",
    "max_segments",
    "send_time",
    "window_start",
    "window_end",
    "scheduled",
    "date_style",
    "normalize_text",
)


@dataclass(frozen=True)
class Template:
    """One SMS template of a tenant; ``None`` window or locale means "any"."""

    window_days: int | None
    locale: str | None
    body: str


@dataclass(frozen=True)
class CustomerRecord:
    """One validated import row: a customer and one of their subscriptions.

    ``subscription_ref`` names the subscription among the customer's (``None``: the customer's one
    subscription, as before several were possible)."""

    external_ref: str
    name: str
    phone: str
    plan: str
    amount: Decimal
    currency: str
    expires_on: dt.date
    opted_out: bool = False
    status: str = "active"
    subscription_ref: str | None = None
    # The customer's CLDR locale (canonical, e.g. "fr_BE"); None: the tenant's locale.
    locale: str | None = None


@dataclass(frozen=True)
class ImportCounts:
    """What an import changed, counted per row (customer and subscription): ``renewed`` rows are also
    ``updated`` (their ``expires_on`` changed); ``removed`` counts subscriptions a full sync took away."""

    created: int = 0
    updated: int = 0
    renewed: int = 0
    unchanged: int = 0
    removed: int = 0


@dataclass(frozen=True)
class SendJob:
    """Everything needed to send one reminder (or to show it in a dry run)."""

    reminder_id: int
    window_days: int
    expires_on: dt.date
    customer_name: str
    phone: str | None
    plan: str
    amount: Decimal
    currency: str
    attempts: int = 0
    # The claim's token (see Ledger.start_sending); None outside a claim (dry runs).
    claimed_at: dt.datetime | None = None
    # The customer's locale (None: the tenant's), which picks the template and formats its values.
    locale: str | None = None


@dataclass(frozen=True)
class DueReminder:
    """A reminder a sweep would create, for ``--dry-run``."""

    subscription_id: int
    expires_on: dt.date
    window_days: int
    skip_reason: str | None


@dataclass(frozen=True)
class RepairedRow:
    """One ledger row the recovery tick settled, and what it became."""

    tenant_id: int
    reminder_id: int
    status: str


@dataclass(frozen=True)
class ReminderView:
    """One ledger row as an operator sees it (``reminders list``)."""

    id: int
    tenant_id: int
    subscription_id: int
    expires_on: dt.date
    window_days: int
    local_date: dt.date
    status: str
    skip_reason: str | None = None
    body: str | None = None
    encoding: str | None = None
    segments: int | None = None
    provider_message_id: str | None = None
    attempts: int = 0
    last_error: str | None = None
    enqueued_at: dt.datetime | None = None
    sent_at: dt.datetime | None = None
    send_started_at: dt.datetime | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    # MessageBird's last status report (migration 0010); None: none yet.
    delivery_status: str | None = None
    delivery_status_at: dt.datetime | None = None
    delivery_reason: str | None = None
    delivery_error_code: int | None = None


# One recorded send outcome: (reminder id, new status, the other columns it sets).
LedgerWrite = tuple[int, ReminderStatus, dict[str, Any]]

# The columns a recorded outcome may set (see Ledger.finish_many), besides ``status`` and ``updated_at``.
OUTCOME_COLUMNS = frozenset(
    {
        "sent_at",
        "enqueued_at",
        "provider_message_id",
        "last_error",
        "skip_reason",
        "body",
        "encoding",
        "segments",
        "attempts",
    }
)


# Single customer operations (``customers show|remove|opt-out|erase``).


@dataclass(frozen=True)
class SubscriptionView:
    """One subscription of a customer as an operator sees it (``customers show``)."""

    id: int
    external_ref: str | None
    plan: str
    amount: Decimal
    currency: str
    expires_on: dt.date
    status: str
    removed_at: dt.datetime | None = None


@dataclass(frozen=True)
class CustomerView:
    """A customer with their subscriptions (by id), as stored; ``phone`` None: no usable number, or erased."""

    id: int
    external_ref: str
    name: str
    phone: str | None
    opted_out: bool
    removed_at: dt.datetime | None
    erased_at: dt.datetime | None
    subscriptions: tuple[SubscriptionView, ...] = ()
    # When they opted out (migration 0010): a STOP reply, the CLI or the API; None if never or opted in.
    opted_out_at: dt.datetime | None = None
    # Their CLDR locale (migration 0013); None: the tenant's.
    locale: str | None = None

    @property
    def subscription_ids(self) -> list[int]:
        """The ids of the customer's subscriptions, removed ones included."""
        return [subscription.id for subscription in self.subscriptions]


# Retention (``LedgerMaintenance.prune``).

# Where a prune batch stopped in the closed rows' age order: the ``(updated_at, id)`` of the last row
# it examined. The next batch starts after it, so rows kept (a current expiry's) are read once per run.
PruneCursor = tuple[dt.datetime, int]


@dataclass(frozen=True)
class PrunedBatch:
    """One prune batch: how many closed rows older than the cut-off it examined and deleted, and where
    the next batch starts (``None``: it examined none, nothing older is left)."""

    examined: int
    deleted: int
    last: PruneCursor | None


# One row for ``Catalog.import_rows``: the CSV line it came from (for rejects) and its record.
ImportRow = tuple[int, CustomerRecord]
# A row the importer did not validate because an earlier import wrote exactly it and nothing has
# changed the stored row since (``Catalog.unchanged_digests``), but that must still be checked with the
# staged rows (it shares a customer with one, or repeats): its line and its source digest.
KeptRow = tuple[int, int]


@dataclass(frozen=True)
class ImportChunk:
    """Rows for ``Catalog.import_rows``, a chunk at a time.

    ``rows`` are validated and staged; ``digests`` (parallel to ``rows``, or empty) are their source
    digests, stored with the subscription so that the next import can recognise the row unchanged.
    Rows recognised so are not validated: ``kept`` ones are taken as the stored rows they name and
    checked with the staged rows of the same customer like any other row; ``unchanged`` ones (their
    digests) need no check at all: they count as unchanged and as present for a full sync."""

    rows: Sequence[ImportRow]
    digests: Sequence[int] = ()
    kept: Sequence[KeptRow] = ()
    unchanged: Sequence[int] = ()


@dataclass(frozen=True)
class ImportPlan:
    """What a staged import would change (``Catalog.import_rows``), before anything is written.

    ``samples`` holds, per kind (created, updated, renewed, removed), the first five rows as
    ``customer_ref`` or ``customer_ref/subscription_ref``. ``rejects`` are (line, reason) of rows the
    file itself contradicts: a key repeated, or one customer's details differing between rows.
    ``active`` is how many subscriptions of the tenant were not removed before a full sync (its
    removal guard's base); 0 for an import that is not one: counting reads all the tenant's rows, too
    much for every 1,000-row request of the HTTP API."""

    counts: ImportCounts
    samples: dict[str, list[str]]
    rejects: list[tuple[int, str]]
    active: int


# The HTTP API's ledger views (``Ledger.page_reminders``, ``Ledger.count_by_day``).

# ``ReminderQuery.delivery_status`` asking for rows with no status report yet (the column is NULL).
NO_DELIVERY_STATUS = "none"


@dataclass(frozen=True)
class ReminderQuery:
    """One page of a tenant's ledger listing (``Ledger.page_reminders``): filters, all optional and
    combined with AND, and the keyset position. Rows come newest first (by id); ``before_id`` is the
    last id of the previous page, so a page costs its own rows however deep the listing goes.

    ``since``/``until`` bound ``local_date`` (the tenant-local day the reminder was claimed for),
    inclusive. ``delivery_status`` :data:`NO_DELIVERY_STATUS` asks for rows without a report.
    ``subscription_ids`` (one customer's) restricts the listing to those subscriptions."""

    status: str | None = None
    delivery_status: str | None = None
    since: dt.date | None = None
    until: dt.date | None = None
    subscription_ids: tuple[int, ...] | None = None
    before_id: int | None = None
    limit: int = 100


@dataclass(frozen=True)
class DayCount:
    """How many of a tenant's reminders claimed on ``local_date`` have this status and delivery status."""

    local_date: dt.date
    status: str
    delivery_status: str | None
    count: int
