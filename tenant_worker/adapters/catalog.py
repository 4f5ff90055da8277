"""Tenants, SMS templates, customers and subscriptions in PostgreSQL: the SQL catalog.

:class:`SqlCatalog` implements ``domain.storage.Catalog`` inside one unit of work's session and hands
out :class:`~tenant_worker.domain.records.Tenant` records, never rows, so no service holds an ORM
object. Per-tenant methods take the tenant id and filter on it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tenant_worker.adapters import customer_sync
from tenant_worker.adapters.orm import CustomerRow, SmsTemplateRow, SubscriptionRow, TenantRow
from tenant_worker.domain.model import TenantSpec, TenantStatus, ValidationError
from tenant_worker.domain.records import (
    TENANT_MUTABLE_FIELDS,
    CustomerView,
    ImportChunk,
    ImportPlan,
    SubscriptionView,
    Template,
    Tenant,
)
from tenant_worker.domain.shards import queue_for_new_tenant


def tenant_record(row: TenantRow) -> Tenant:
    """The domain record of a tenant row: every field of :class:`Tenant` is the row's column of that
    name (the windows array as a tuple)."""
    values = {field.name: getattr(row, field.name) for field in fields(Tenant)}
    return Tenant(**{**values, "windows": tuple(row.windows)})


class SqlCatalog:
    """``domain.storage.Catalog`` on PostgreSQL, in the caller's session (one unit of work)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def create_tenant(self, spec: TenantSpec, shard_count: int) -> Tenant:
        """Insert a validated tenant with its queue; a taken slug is a :class:`ValidationError`.

        The id is drawn from the sequence first because the shard queue is a function of it and the
        column is NOT NULL: the row is complete from its first write.
        """
        session = self.session
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
            scheduled=True,
            date_style=spec.date_style,
            normalize_text=spec.normalize_text,
        )
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            raise ValidationError([f"a tenant with slug {spec.slug!r} already exists"]) from None
        return tenant_record(row)

    def _row(self, slug: str, lock: bool = False) -> TenantRow:
        query = select(TenantRow).where(TenantRow.slug == slug)
        row = self.session.scalars(query.with_for_update() if lock else query).first()
        if row is None:
            raise ValidationError([f"unknown tenant {slug!r} (see `tenant-worker tenant list`)"])
        return row

    def find_tenant(self, slug: str, *, lock: bool = False) -> Tenant:
        """The tenant with ``slug``, or a clear error naming it."""
        return tenant_record(self._row(slug, lock))

    def get_tenant(self, tenant_id: int) -> Tenant:
        """The tenant with primary key ``tenant_id``."""
        row = self.session.get(TenantRow, tenant_id)
        if row is None:
            raise ValidationError([f"unknown tenant id {tenant_id}"])
        return tenant_record(row)

    def list_tenants(self, status: TenantStatus | None = None, ids: Sequence[int] | None = None) -> list[Tenant]:
        """Tenants ordered by slug, optionally only those with ``status`` or among ``ids``."""
        query = select(TenantRow).order_by(TenantRow.slug)
        if status is not None:
            query = query.where(TenantRow.status == status.value)
        if ids is not None:
            query = query.where(TenantRow.id.in_(list(ids)))
        return [tenant_record(row) for row in self.session.scalars(query)]

    def save_tenant(self, tenant: Tenant) -> None:
        """Write the changeable fields that differ (and ``updated_at`` if any did)."""
        row = self.session.get(TenantRow, tenant.id)
        if row is None:
            raise ValidationError([f"unknown tenant id {tenant.id}"])
        values = {name: getattr(tenant, name) for name in TENANT_MUTABLE_FIELDS}
        values["windows"] = list(tenant.windows)
        if _assign(row, **values):
            row.updated_at = dt.datetime.now(dt.UTC)
        self.session.flush()

    def purge_tenant(self, tenant_id: int) -> None:
        """Delete the tenant; the schema's cascades take customers, subscriptions and the ledger."""
        self.session.execute(delete(SmsTemplateRow).where(SmsTemplateRow.tenant_id == tenant_id))
        self.session.execute(delete(TenantRow).where(TenantRow.id == tenant_id))

    def tenant_queues(self) -> dict[str, list[str]]:
        """Every queue some tenant is assigned to, with the slugs on it."""
        queues: dict[str, list[str]] = {}
        for queue, slug in self.session.execute(select(TenantRow.queue, TenantRow.slug).order_by(TenantRow.slug)):
            queues.setdefault(queue, []).append(slug)
        return queues

    def _template_row(self, tenant_id: int, window_days: int | None, locale: str | None) -> SmsTemplateRow | None:
        return self.session.scalars(
            select(SmsTemplateRow).where(
                SmsTemplateRow.tenant_id == tenant_id,
                SmsTemplateRow.window_days.is_(None)
                if window_days is None
                else SmsTemplateRow.window_days == window_days,
                SmsTemplateRow.locale.is_(None) if locale is None else SmsTemplateRow.locale == locale,
            )
        ).first()

    def save_template(self, tenant_id: int, template: Template) -> None:
        """Create or replace the template for (window, locale); validate it before calling this."""
        existing = self._template_row(tenant_id, template.window_days, template.locale)
        if existing is None:
            self.session.add(
                SmsTemplateRow(
                    tenant_id=tenant_id, window_days=template.window_days, locale=template.locale, body=template.body
                )
            )
        elif existing.body != template.body:
            existing.body = template.body
            existing.updated_at = dt.datetime.now(dt.UTC)
        self.session.flush()

    def delete_template(self, tenant_id: int, window_days: int | None, locale: str | None) -> None:
        """Delete the template of (window, locale), if any."""
        existing = self._template_row(tenant_id, window_days, locale)
        if existing is not None:
            self.session.delete(existing)
            self.session.flush()

    def templates(self, tenant_id: int) -> list[Template]:
        """All templates of the tenant."""
        rows = self.session.scalars(
            select(SmsTemplateRow)
            .where(SmsTemplateRow.tenant_id == tenant_id)
            .order_by(SmsTemplateRow.window_days, SmsTemplateRow.locale)
        )
        return [Template(row.window_days, row.locale, row.body) for row in rows]

    # Single customer operations (``services.customer_ops``).

    def find_customer(self, tenant_id: int, external_ref: str, *, lock: bool = False) -> CustomerView | None:
        """The customer with ``external_ref`` and their subscriptions by id, or None."""
        query = select(CustomerRow).where(CustomerRow.tenant_id == tenant_id, CustomerRow.external_ref == external_ref)
        row = self.session.scalars(query.with_for_update() if lock else query).first()
        if row is None:
            return None
        subscriptions = self.session.scalars(
            select(SubscriptionRow)
            .where(SubscriptionRow.tenant_id == tenant_id, SubscriptionRow.customer_id == row.id)
            .order_by(SubscriptionRow.id)
        )
        return CustomerView(
            id=row.id,
            external_ref=row.external_ref,
            name=row.name,
            phone=row.phone,
            opted_out=row.opted_out or row.opted_out_at is not None,
            removed_at=row.removed_at,
            erased_at=row.erased_at,
            opted_out_at=row.opted_out_at,
            locale=row.locale,
            subscriptions=tuple(
                SubscriptionView(
                    id=s.id,
                    external_ref=s.external_ref,
                    plan=s.plan,
                    amount=s.amount,
                    currency=s.currency,
                    expires_on=s.expires_on,
                    status=s.status,
                    removed_at=s.removed_at,
                )
                for s in subscriptions
            ),
        )

    def remove_customer(self, tenant_id: int, customer_id: int) -> bool:
        """Stamp ``removed_at`` on the customer and their subscriptions that are not removed yet."""
        customer = self.session.execute(
            update(CustomerRow)
            .where(CustomerRow.tenant_id == tenant_id, CustomerRow.id == customer_id, CustomerRow.removed_at.is_(None))
            .values(removed_at=func.now(), updated_at=func.now())
            .execution_options(synchronize_session=False)
        )
        subscriptions = self.session.execute(
            update(SubscriptionRow)
            .where(
                SubscriptionRow.tenant_id == tenant_id,
                SubscriptionRow.customer_id == customer_id,
                SubscriptionRow.removed_at.is_(None),
            )
            .values(removed_at=func.now(), updated_at=func.now())
            .execution_options(synchronize_session=False)
        )
        return int(getattr(customer, "rowcount", 0)) + int(getattr(subscriptions, "rowcount", 0)) > 0

    def set_opted_out(self, tenant_id: int, customer_id: int, opted_out: bool) -> bool:
        """Record the customer's own opt-out (``opted_out_at``; the import's ``opted_out`` column is the
        tenant's), or clear both; whether it changed."""
        changes: ColumnElement[bool]
        values: dict[str, Any]
        if opted_out:
            changes, values = CustomerRow.opted_out_at.is_(None), {"opted_out_at": func.now()}
        else:
            changes = CustomerRow.opted_out.is_(True) | CustomerRow.opted_out_at.is_not(None)
            values = {"opted_out": False, "opted_out_at": None}
        result = self.session.execute(
            update(CustomerRow)
            .where(CustomerRow.tenant_id == tenant_id, CustomerRow.id == customer_id, changes)
            .values(**values, updated_at=func.now())
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0)) > 0

    def erase_customer(self, tenant_id: int, customer_id: int, token: str) -> None:
        """Overwrite the customer's personal data in place (see the port); the rows stay, anonymous."""
        self.session.execute(
            text("""
                UPDATE customers SET name = '', phone = NULL, external_ref = :token, opted_out = true,
                                     erased_at = now(), removed_at = coalesce(removed_at, now()), updated_at = now()
                 WHERE tenant_id = :tenant_id AND id = :customer_id
            """),
            {"tenant_id": tenant_id, "customer_id": customer_id, "token": token},
        )
        self.session.execute(
            text("""
                UPDATE subscriptions SET external_ref = CASE WHEN external_ref IS NULL THEN NULL
                                                             ELSE 'erased-' || id END,
                                         removed_at = coalesce(removed_at, now()), updated_at = now()
                 WHERE tenant_id = :tenant_id AND customer_id = :customer_id
            """),
            {"tenant_id": tenant_id, "customer_id": customer_id},
        )

    # Customer sync: the streaming, set-based import.

    def import_rows(
        self,
        tenant_id: int,
        chunks: Iterable[ImportChunk],
        *,
        full_sync: bool,
        approve: Callable[[ImportPlan], bool],
    ) -> tuple[ImportPlan, bool]:
        """Stage with COPY, plan, and merge set-based if approved (``adapters.customer_sync``)."""
        return customer_sync.import_rows(self.session, tenant_id, chunks, full_sync=full_sync, approve=approve)

    def unchanged_digests(self, tenant_id: int) -> set[int]:
        """The source digests of subscriptions unchanged since their import (``adapters.customer_sync``)."""
        return customer_sync.unchanged_digests(self.session, tenant_id)


def _assign(row: object, **values: object) -> bool:
    changed = False
    for name, value in values.items():
        if getattr(row, name, None) != value:
            setattr(row, name, value)
            changed = True
    return changed
