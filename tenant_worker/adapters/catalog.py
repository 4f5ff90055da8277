"""Tenants, SMS templates, customers and subscriptions in PostgreSQL.

Tenant administration (create, look up, list) is the one place that spans tenants; everything about a
tenant's own customers and templates goes through :class:`TenantCatalog`, bound to one tenant id.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tenant_worker.adapters import ledger_repair
from tenant_worker.adapters.orm import CustomerRow, SmsTemplateRow, SubscriptionRow, TenantRow
from tenant_worker.constants import DEFAULT_SHARD_COUNT
from tenant_worker.domain.model import TenantSpec, TenantStatus, ValidationError
from tenant_worker.domain.shards import queue_for_new_tenant


def create_tenant(session: Session, spec: TenantSpec, shard_count: int = DEFAULT_SHARD_COUNT) -> TenantRow:
    """Insert a validated tenant with its queue; a taken slug is a :class:`ValidationError`, not a crash.

    The id is drawn from the sequence first because the shard queue is a function of it and the
    column is NOT NULL: the row is complete from its first write.
    """
    tenant_id = int(session.execute(text("SELECT nextval(pg_get_serial_sequence('tenants', 'id'))")).scalar_one())
    row = TenantRow(
        id=tenant_id,
        queue=queue_for_new_tenant(tenant_id, spec.slug, shard_count, dedicated=spec.dedicated),
        rate_per_second=spec.rate_per_second,
        max_segments=spec.max_segments,
        slug=spec.slug,
        name=spec.name,
        timezone=spec.timezone,
        locale=spec.locale,
        originator=spec.originator,
        windows=list(spec.windows),
        status=spec.status.value,
        send_time=spec.send_time,
        window_start=spec.sending_window.start,
        window_end=spec.sending_window.end,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise ValidationError([f"a tenant with slug {spec.slug!r} already exists"]) from None
    return row


def find_tenant(session: Session, slug: str) -> TenantRow:
    """The tenant with ``slug``, or a clear error naming it."""
    row = session.scalars(select(TenantRow).where(TenantRow.slug == slug)).first()
    if row is None:
        raise ValidationError([f"unknown tenant {slug!r} (see `tenant-worker tenant list`)"])
    return row


def get_tenant(session: Session, tenant_id: int) -> TenantRow:
    """The tenant with primary key ``tenant_id`` (tasks carry ids, not slugs, so renames are safe)."""
    row = session.get(TenantRow, tenant_id)
    if row is None:
        raise ValidationError([f"unknown tenant id {tenant_id}"])
    return row


def tenant_queues(session: Session) -> dict[str, list[str]]:
    """Every queue some tenant is assigned to, with the slugs on it."""
    queues: dict[str, list[str]] = {}
    for queue, slug in session.execute(select(TenantRow.queue, TenantRow.slug).order_by(TenantRow.slug)):
        queues.setdefault(queue, []).append(slug)
    return queues


def list_tenants(session: Session, status: TenantStatus | None = None) -> list[TenantRow]:
    """Tenants ordered by slug, optionally only those with ``status``."""
    query = select(TenantRow).order_by(TenantRow.slug)
    if status is not None:
        query = query.where(TenantRow.status == status.value)
    return list(session.scalars(query))


@dataclass(frozen=True)
class CustomerRecord:
    """One validated import row: a customer and their (single) subscription."""

    external_ref: str
    name: str
    phone: str
    plan: str
    amount: Decimal
    currency: str
    expires_on: dt.date
    opted_out: bool = False
    status: str = "active"


@dataclass(frozen=True)
class ImportCounts:
    """What an import changed."""

    created: int = 0
    updated: int = 0
    renewed: int = 0
    unchanged: int = 0


class TenantCatalog:
    """Templates and customers of one tenant."""

    def __init__(self, session: Session, tenant_id: int) -> None:
        self.session = session
        self.tenant_id = tenant_id

    def save_template(self, body: str, window_days: int | None = None, locale: str | None = None) -> None:
        """Create or replace the template for (window, locale); validate it before calling this."""
        existing = self.session.scalars(
            select(SmsTemplateRow).where(
                SmsTemplateRow.tenant_id == self.tenant_id,
                SmsTemplateRow.window_days.is_(None)
                if window_days is None
                else SmsTemplateRow.window_days == window_days,
                SmsTemplateRow.locale.is_(None) if locale is None else SmsTemplateRow.locale == locale,
            )
        ).first()
        if existing is None:
            self.session.add(
                SmsTemplateRow(tenant_id=self.tenant_id, window_days=window_days, locale=locale, body=body)
            )
        else:
            existing.body = body
            existing.updated_at = dt.datetime.now(dt.UTC)
        self.session.flush()

    def templates(self) -> list[SmsTemplateRow]:
        """All templates of the tenant."""
        return list(
            self.session.scalars(
                select(SmsTemplateRow)
                .where(SmsTemplateRow.tenant_id == self.tenant_id)
                .order_by(SmsTemplateRow.window_days, SmsTemplateRow.locale)
            )
        )

    def upsert_customers(
        self, records: Sequence[CustomerRecord], progress: Callable[[int], None] | None = None
    ) -> ImportCounts:
        """Create or update customers and their subscription; a new ``expires_on`` is a renewal.
        ``progress`` is called with the number of records done so far, every 200 records and at the end."""
        existing = {
            customer.external_ref: (customer, subscription)
            for customer, subscription in self.session.execute(
                select(CustomerRow, SubscriptionRow)
                .join(SubscriptionRow, SubscriptionRow.customer_id == CustomerRow.id, isouter=True)
                .where(CustomerRow.tenant_id == self.tenant_id)
            )
        }
        created = updated = renewed = unchanged = 0
        now = dt.datetime.now(dt.UTC)
        for record in records:
            customer, subscription = existing.get(record.external_ref, (None, None))
            if customer is None:
                customer = CustomerRow(tenant_id=self.tenant_id, external_ref=record.external_ref)
                self.session.add(customer)
                created += 1
            customer_changed = _assign(customer, name=record.name, phone=record.phone, opted_out=record.opted_out)
            self.session.flush()
            if subscription is None:
                subscription = SubscriptionRow(tenant_id=self.tenant_id, customer_id=customer.id)
                self.session.add(subscription)
            elif subscription.expires_on != record.expires_on:
                renewed += 1
            subscription_changed = _assign(
                subscription,
                plan=record.plan,
                amount=record.amount,
                currency=record.currency,
                expires_on=record.expires_on,
                status=record.status,
            )
            if customer_changed:
                customer.updated_at = now
            if subscription_changed:
                subscription.updated_at = now
            if record.external_ref in existing:
                if customer_changed or subscription_changed:
                    updated += 1
                else:
                    unchanged += 1
            existing[record.external_ref] = (customer, subscription)
            if progress is not None and (created + updated + unchanged) % 200 == 0:
                progress(created + updated + unchanged)
        self.session.flush()
        if progress is not None:
            progress(len(records))
        return ImportCounts(created, updated, renewed, unchanged)


def _assign(row: object, **values: object) -> bool:
    changed = False
    for name, value in values.items():
        if getattr(row, name, None) != value:
            setattr(row, name, value)
            changed = True
    return changed


def tenants_with_waiting_reminders(session: Session, published_before: dt.datetime) -> list[TenantRow]:
    """Tenants with pending reminders that no queued task carries: held back by quiet hours or a
    paused gateway, refused by the broker, or published so long ago that the task must be lost.
    Both look-ups are index probes (see ``ledger_repair``), never a walk through the backlog."""
    ids = set(ledger_repair.tenants_with_unpublished(session))
    ids.update(ledger_repair.tenants_with_lost_tasks(session, published_before))
    if not ids:
        return []
    return list(session.scalars(select(TenantRow).where(TenantRow.id.in_(ids)).order_by(TenantRow.slug)))
