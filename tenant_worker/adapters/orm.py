"""PostgreSQL tables as SQLAlchemy 2 typed models.

Tenant isolation is enforced by the schema as well as by the repository: child rows carry
``tenant_id`` and reference their parent through ``(tenant_id, id)``, so a subscription can never
point at another tenant's customer, nor a reminder at another tenant's subscription.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    Time,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tenant_worker.domain.sms_limits import DEFAULT_MAX_SEGMENTS, MAX_SEGMENTS_LIMIT

# The predicates of the ledger's partial indexes, defined once: the indexes below use them, and the
# statements that must be answered from an index (adapters/repository.py, ledger_admin.py,
# ledger_repair.py) repeat them word for word, so the planner can prove the index applies.
# Migrations 0004 and 0005 created them; tests/integration/test_index_predicates.py checks the two agree.
WAITING = "status = 'pending' AND enqueued_at IS NULL"
IN_FLIGHT = "status = 'sending' OR (status = 'pending' AND enqueued_at IS NOT NULL)"
CLOSED = "status NOT IN ('pending', 'sending')"
SENDING = "status = 'sending'"
PUBLISHED = "status = 'pending' AND enqueued_at IS NOT NULL"
LEDGER_INDEX_PREDICATES = {
    "reminders_waiting_idx": WAITING,
    "reminders_in_flight_idx": IN_FLIGHT,
    "reminders_closed_idx": CLOSED,
    "reminders_sending_since_idx": SENDING,
    "reminders_published_since_idx": PUBLISHED,
    "reminders_closed_since_idx": CLOSED,
    "reminders_closed_day_idx": CLOSED,
}


class Base(DeclarativeBase):
    """Declarative base shared by every table."""


def _created() -> Mapped[dt.datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class TenantRow(Base):
    """An organisation whose customers receive reminders."""

    __tablename__ = "tenants"
    __table_args__ = (
        CheckConstraint("slug ~ '^[a-z0-9-]{2,63}$'", name="tenants_slug_format"),
        CheckConstraint("status IN ('active', 'paused')", name="tenants_status_valid"),
        CheckConstraint("cardinality(windows) > 0", name="tenants_windows_not_empty"),
        CheckConstraint("queue ~ '^[a-z0-9][a-z0-9._-]{0,99}$'", name="tenants_queue_format"),
        CheckConstraint("rate_per_second IS NULL OR rate_per_second > 0", name="tenants_rate_positive"),
        CheckConstraint(f"max_segments BETWEEN 1 AND {MAX_SEGMENTS_LIMIT}", name="tenants_max_segments_range"),
        CheckConstraint("date_style IN ('short', 'medium', 'long')", name="tenants_date_style_valid"),
        # The sweep fan-out and `tenant-worker queues` list tenants by queue.
        Index("tenants_queue_idx", "queue"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(Text)
    timezone: Mapped[str] = mapped_column(Text)
    locale: Mapped[str] = mapped_column(String(35), server_default="en")
    originator: Mapped[str] = mapped_column(String(16))
    windows: Mapped[list[int]] = mapped_column(ARRAY(Integer), server_default=text("'{5,3,1}'"))
    status: Mapped[str] = mapped_column(String(16), server_default="active")
    # The Celery queue of the tenant's send tasks, stored when the tenant is created (see
    # tenant_worker.domain.shards) so a new SHARD_COUNT never silently moves anyone.
    queue: Mapped[str] = mapped_column(String(100))
    # Optional cap on this tenant's SMS per second, on top of the global provider limit.
    rate_per_second: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = _created()
    updated_at: Mapped[dt.datetime] = _created()
    # The daily sweep fires at send_time on the tenant's clock; SMS only go out inside
    # [window_start, window_end) local (equal: no quiet hours). `scheduled` is false once the
    # schedule was removed on purpose, so `schedule sync` does not recreate it.
    send_time: Mapped[dt.time] = mapped_column(Time, default=dt.time(10), server_default="10:00")
    window_start: Mapped[dt.time] = mapped_column(Time, default=dt.time(8), server_default="08:00")
    window_end: Mapped[dt.time] = mapped_column(Time, default=dt.time(21), server_default="21:00")
    scheduled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    # Most SMS segments one reminder may cost (migration 0006); templates are checked against it when
    # saved, and a rendered SMS over it is skipped as too_long.
    max_segments: Mapped[int] = mapped_column(
        Integer, default=DEFAULT_MAX_SEGMENTS, server_default=text(str(DEFAULT_MAX_SEGMENTS))
    )
    # How {expires_on} is written (CLDR short/medium/long, migration 0013), and whether the tenant's own
    # text is normalised to GSM-7 like the formatted values are.
    date_style: Mapped[str] = mapped_column(String(6), default="long", server_default="long")
    normalize_text: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class CustomerRow(Base):
    """A tenant's customer; ``phone`` is E.164 or NULL when the tenant gave no usable number."""

    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("tenant_id", "external_ref", name="customers_tenant_external_ref_key"),
        UniqueConstraint("tenant_id", "id", name="customers_tenant_id_id_key"),
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(BigInteger)
    external_ref: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(20))
    opted_out: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # The customer's CLDR locale (migration 0013); NULL: the tenant's.
    locale: Mapped[str | None] = mapped_column(String(35))
    # When the customer opted out (migration 0010): a STOP reply, the CLI or the API.
    opted_out_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Set when a full sync or `customers remove` took the customer away (migration 0007); kept for
    # the ledger's sake, never swept.
    removed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Set when the customer's personal data was erased (right to erasure).
    erased_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = _created()
    updated_at: Mapped[dt.datetime] = _created()


class SubscriptionRow(Base):
    """What the customer pays for; ``expires_on`` is a date in the tenant's time zone."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        # One subscription per (customer, reference); NULL, "the customer's one subscription", counts
        # as a value (migration 0007).
        Index(
            "subscriptions_customer_ref_key",
            "customer_id",
            "external_ref",
            unique=True,
            postgresql_nulls_not_distinct=True,
        ),
        UniqueConstraint("tenant_id", "id", name="subscriptions_tenant_id_id_key"),
        ForeignKeyConstraint(["tenant_id", "customer_id"], ["customers.tenant_id", "customers.id"], ondelete="CASCADE"),
        CheckConstraint("status IN ('active', 'cancelled', 'suspended')", name="subscriptions_status_valid"),
        # The sweep reads only subscriptions expiring within the next max(windows) days.
        Index("subscriptions_tenant_expires_idx", "tenant_id", "expires_on"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(BigInteger)
    customer_id: Mapped[int] = mapped_column(BigInteger)
    plan: Mapped[str] = mapped_column(Text)
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3))
    expires_on: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), server_default="active")
    # The billing platform's reference of this subscription (NULL: the customer's only one).
    external_ref: Mapped[str | None] = mapped_column(String(128))
    # Set when a full sync or `customers remove` took it away; never swept (migration 0007).
    removed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # The source row that last wrote this subscription through the import, and a hash of what it
    # wrote (migration 0011): while the stored values still hash the same, a re-import of that row
    # is recognised without validation (adapters/customer_sync.py).
    import_digest: Mapped[int | None] = mapped_column(BigInteger)
    import_state: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = _created()
    updated_at: Mapped[dt.datetime] = _created()


class SmsTemplateRow(Base):
    """A tenant's SMS text, optionally specific to one window and/or locale (NULL = any)."""

    __tablename__ = "sms_templates"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        Index(
            "sms_templates_scope_key",
            "tenant_id",
            text("coalesce(window_days, 0)"),
            text("coalesce(locale, '')"),
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(BigInteger)
    window_days: Mapped[int | None] = mapped_column(Integer)
    locale: Mapped[str | None] = mapped_column(String(35))
    body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = _created()


class ReminderRow(Base):
    """The ledger: one row per (subscription, expires_on, window), which is what makes sends idempotent."""

    __tablename__ = "reminders"
    __table_args__ = (
        UniqueConstraint("subscription_id", "expires_on", "window_days", name="reminders_once_per_window"),
        ForeignKeyConstraint(
            ["tenant_id", "subscription_id"],
            ["subscriptions.tenant_id", "subscriptions.id"],
            ondelete="CASCADE",
        ),
        CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'failed', 'skipped', 'unknown')",
            name="reminders_status_valid",
        ),
        CheckConstraint("status <> 'skipped' OR skip_reason IS NOT NULL", name="reminders_skip_has_reason"),
        # The open rows, split the way dispatching reads them, so a tenant's cost per batch depends
        # on its batches in flight, never on its backlog (see repository._WAITING / _IN_FLIGHT).
        # Deliberately no index that leads with tenant_id and covers every row: with statistics that
        # have not seen a big sweep yet, the planner would fetch a batch's ids by walking the whole
        # tenant through it instead of looking them up by primary key (tests/.../test_dispatch_cost).
        # The closed rows have their own, for the ledger listing; no dispatch statement can use it,
        # as each names an open status or none at all.
        Index(
            "reminders_waiting_idx",
            "tenant_id",
            "id",
            postgresql_where=text(WAITING),
        ),
        Index(
            "reminders_in_flight_idx",
            "tenant_id",
            "enqueued_at",
            postgresql_where=text(IN_FLIGHT),
        ),
        Index(
            "reminders_closed_idx",
            "tenant_id",
            "id",
            postgresql_where=text(CLOSED),
        ),
        # The recovery tick's range scans by age (migration 0005): rows claimed long ago and still
        # sending (their worker died), and rows published long ago and still pending (the task is lost).
        Index("reminders_sending_since_idx", "updated_at", postgresql_where=text(SENDING)),
        Index(
            "reminders_published_since_idx",
            "enqueued_at",
            postgresql_where=text(PUBLISHED),
        ),
        # Retention (migration 0008): closed rows by age, id last so a prune batch resumes exactly
        # where the previous one stopped (adapters/ledger_repair.py).
        Index("reminders_closed_since_idx", "updated_at", "id", postgresql_where=text(CLOSED)),
        # The API's per-day counts (migration 0012): closed rows by tenant and claim day. Closed rows
        # only, so no dispatch statement can use it; no column a status report writes, so recording
        # one stays a HOT update.
        Index("reminders_closed_day_idx", "tenant_id", "local_date", postgresql_where=text(CLOSED)),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(BigInteger)
    subscription_id: Mapped[int] = mapped_column(BigInteger)
    expires_on: Mapped[dt.date] = mapped_column(Date)
    window_days: Mapped[int] = mapped_column(Integer)
    local_date: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    skip_reason: Mapped[str | None] = mapped_column(String(32))
    body: Mapped[str | None] = mapped_column(Text)
    encoding: Mapped[str | None] = mapped_column(String(8))
    segments: Mapped[int | None] = mapped_column(Integer)
    provider_message_id: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    enqueued_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Set before the SMS's request may start (migration 0005); NULL = this attempt never reached
    # MessageBird, so a row whose worker died can safely go back to pending.
    send_started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # The last status report MessageBird sent for this SMS (migration 0010); NULL = none yet.
    delivery_status: Mapped[str | None] = mapped_column(String(24))
    delivery_status_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    delivery_reason: Mapped[str | None] = mapped_column(Text)
    delivery_error_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = _created()
    updated_at: Mapped[dt.datetime] = _created()


class ApiKeyRow(Base):
    """A tenant's API key: only the SHA-256 of the secret is kept (migration 0009)."""

    __tablename__ = "api_keys"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        Index("api_keys_tenant_idx", "tenant_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(BigInteger)
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[dt.datetime] = _created()
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
