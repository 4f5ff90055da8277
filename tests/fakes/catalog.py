"""The catalog in memory: ``adapters.catalog.SqlCatalog``'s behaviour on the fake tables.

Each method follows its SQL twin statement by statement (the contract suite checks they agree): the
queue of a new tenant comes from ``domain.shards``, a taken slug and an unknown tenant are the same
``ValidationError``, templates sort as PostgreSQL sorts NULLs (last), and the customer import is
``tests.fakes.customer_sync``, the in-memory twin of ``adapters.customer_sync``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence

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
from tests.fakes import customer_sync
from tests.fakes.tables import ConstraintViolation, CustomerRow, FakeSession, SubscriptionRow, Tables, TemplateRow

_TENANT_STATUSES = frozenset(status.value for status in TenantStatus)


class FakeCatalog:
    """``domain.storage.Catalog`` on :class:`~tests.fakes.tables.Tables` (one unit of work's view)."""

    def __init__(self, session: FakeSession) -> None:
        self._session = session

    @property
    def _tables(self) -> Tables:
        return self._session.tables

    def _touch(self) -> None:
        self._session.statement()

    def create_tenant(self, spec: TenantSpec, shard_count: int) -> Tenant:
        """Insert the tenant on its shard (or dedicated) queue; a taken slug is a ``ValidationError``."""
        self._touch()
        tenant_id = next(self._tables.tenant_ids)
        if any(t.slug == spec.slug for t in self._tables.tenants.values()):
            raise ValidationError([f"a tenant with slug {spec.slug!r} already exists"])
        tenant = Tenant(
            id=tenant_id,
            slug=spec.slug,
            name=spec.name,
            timezone=spec.timezone,
            locale=spec.locale,
            originator=spec.originator,
            windows=tuple(spec.windows),
            status=spec.status.value,
            queue=queue_for_new_tenant(tenant_id, spec.slug, shard_count, dedicated=spec.dedicated),
            rate_per_second=spec.rate_per_second,
            max_segments=spec.max_segments,
            send_time=spec.send_time,
            window_start=spec.sending_window.start,
            window_end=spec.sending_window.end,
            scheduled=True,
        )
        self._tables.tenants[tenant_id] = _checked(tenant)
        return tenant

    def find_tenant(self, slug: str, *, lock: bool = False) -> Tenant:
        """The tenant with ``slug`` (units of work are serialised, so ``lock`` needs nothing more)."""
        self._touch()
        for tenant in self._tables.tenants.values():
            if tenant.slug == slug:
                return tenant
        raise ValidationError([f"unknown tenant {slug!r} (see `tenant-worker tenant list`)"])

    def get_tenant(self, tenant_id: int) -> Tenant:
        """The tenant with this id."""
        self._touch()
        tenant = self._tables.tenants.get(tenant_id)
        if tenant is None:
            raise ValidationError([f"unknown tenant id {tenant_id}"])
        return tenant

    def list_tenants(self, status: TenantStatus | None = None, ids: Sequence[int] | None = None) -> list[Tenant]:
        """Tenants ordered by slug, optionally only those with ``status`` or among ``ids``."""
        self._touch()
        wanted = None if ids is None else set(ids)
        return sorted(
            (
                t
                for t in self._tables.tenants.values()
                if (status is None or t.status == status.value) and (wanted is None or t.id in wanted)
            ),
            key=lambda t: t.slug,
        )

    def save_tenant(self, tenant: Tenant) -> None:
        """Write the changeable fields (id and slug are identity and stay as stored)."""
        stored = self.get_tenant(tenant.id)
        changes = {name: getattr(tenant, name) for name in TENANT_MUTABLE_FIELDS}
        changes["windows"] = tuple(tenant.windows)
        changes["status"] = str(tenant.status)  # a TenantStatus is stored, and read back, as its text
        self._tables.tenants[tenant.id] = _checked(dataclasses.replace(stored, **changes))

    def purge_tenant(self, tenant_id: int) -> None:
        """Delete the tenant and, as the schema's ON DELETE CASCADE does, everything of it."""
        self._touch()
        tables = self._tables
        tables.tenants.pop(tenant_id, None)
        for table in (tables.customers, tables.subscriptions, tables.reminders):
            for row_id in [row_id for row_id, row in table.items() if row.tenant_id == tenant_id]:
                del table[row_id]
        for key in [key for key in tables.templates if key[0] == tenant_id]:
            del tables.templates[key]

    def tenant_queues(self) -> dict[str, list[str]]:
        """Every queue some tenant is assigned to, with its slugs in order."""
        queues: dict[str, list[str]] = {}
        for tenant in self.list_tenants():
            queues.setdefault(tenant.queue, []).append(tenant.slug)
        return queues

    def templates(self, tenant_id: int) -> list[Template]:
        """The tenant's templates by window then locale, "any" (NULL) last as in PostgreSQL."""
        self._touch()
        rows = [row for key, row in self._tables.templates.items() if key[0] == tenant_id]
        rows.sort(key=lambda r: (r.window_days is None, r.window_days or 0, r.locale is None, r.locale or ""))
        return [Template(row.window_days, row.locale, row.body) for row in rows]

    def save_template(self, tenant_id: int, template: Template) -> None:
        """Create or replace the template of (window, locale)."""
        self._touch()
        if tenant_id not in self._tables.tenants:
            raise ConstraintViolation(f"sms_templates: no tenant {tenant_id}")
        key = (tenant_id, template.window_days, template.locale)
        self._tables.templates[key] = TemplateRow(tenant_id, template.window_days, template.locale, template.body)

    def delete_template(self, tenant_id: int, window_days: int | None, locale: str | None) -> None:
        """Delete the template of (window, locale), if any."""
        self._touch()
        self._tables.templates.pop((tenant_id, window_days, locale), None)

    # Single customer operations (``services.customer_ops``).

    def find_customer(self, tenant_id: int, external_ref: str, *, lock: bool = False) -> CustomerView | None:
        """The customer with ``external_ref`` and their subscriptions by id (``lock`` needs nothing more)."""
        self._touch()
        tables = self._tables
        row = next(
            (c for c in tables.customers.values() if c.tenant_id == tenant_id and c.external_ref == external_ref), None
        )
        if row is None:
            return None
        subscriptions = sorted(
            (s for s in tables.subscriptions.values() if s.tenant_id == tenant_id and s.customer_id == row.id),
            key=lambda s: s.id,
        )
        return CustomerView(
            row.id,
            row.external_ref,
            row.name,
            row.phone,
            row.opted_out or row.opted_out_at is not None,
            row.removed_at,
            row.erased_at,
            tuple(
                SubscriptionView(
                    s.id, s.external_ref, s.plan, s.amount, s.currency, s.expires_on, s.status, s.removed_at
                )
                for s in subscriptions
            ),
            opted_out_at=row.opted_out_at,
            locale=row.locale,
        )

    def _customer_rows(self, tenant_id: int, customer_id: int) -> tuple[CustomerRow | None, list[SubscriptionRow]]:
        self._touch()
        customer = self._tables.customers.get(customer_id)
        if customer is None or customer.tenant_id != tenant_id:
            return None, []
        subscriptions = [
            s for s in self._tables.subscriptions.values() if s.tenant_id == tenant_id and s.customer_id == customer_id
        ]
        return customer, subscriptions

    def remove_customer(self, tenant_id: int, customer_id: int) -> bool:
        """Stamp ``removed_at`` (the transaction's now) where it is not set yet; whether anything changed."""
        now = self._session.transaction_now()
        customer, subscriptions = self._customer_rows(tenant_id, customer_id)
        changed = False
        if customer is not None and customer.removed_at is None:
            self._tables.customers[customer.id] = dataclasses.replace(customer, removed_at=now)
            changed = True
        for subscription in subscriptions:
            if subscription.removed_at is None:
                self._tables.subscriptions[subscription.id] = dataclasses.replace(subscription, removed_at=now)
                changed = True
        return changed

    def set_opted_out(self, tenant_id: int, customer_id: int, opted_out: bool) -> bool:
        """Set the customer's ``opted_out``; whether it changed."""
        customer, _ = self._customer_rows(tenant_id, customer_id)
        if customer is None:
            return False
        if opted_out:
            if customer.opted_out_at is not None:
                return False
            changed = dataclasses.replace(customer, opted_out_at=self._session.transaction_now())
        elif customer.opted_out or customer.opted_out_at is not None:
            changed = dataclasses.replace(customer, opted_out=False, opted_out_at=None)
        else:
            return False
        self._tables.customers[customer.id] = changed
        return True

    def erase_customer(self, tenant_id: int, customer_id: int, token: str) -> None:
        """Overwrite the customer's personal data in place, as the SQL catalog does."""
        now = self._session.transaction_now()
        customer, subscriptions = self._customer_rows(tenant_id, customer_id)
        if customer is None:
            return
        if any(c.tenant_id == tenant_id and c.external_ref == token for c in self._tables.customers.values()):
            raise ConstraintViolation(f"customers_tenant_external_ref_key: {token!r}")
        self._tables.customers[customer.id] = dataclasses.replace(
            customer,
            name="",
            phone=None,
            external_ref=token,
            opted_out=True,
            erased_at=now,
            removed_at=customer.removed_at or now,
        )
        for s in subscriptions:
            self._tables.subscriptions[s.id] = dataclasses.replace(
                s,
                external_ref=None if s.external_ref is None else f"erased-{s.id}",
                removed_at=s.removed_at or now,
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
        """``adapters.customer_sync`` in memory (``tests.fakes.customer_sync``)."""
        self._touch()
        if tenant_id not in self._tables.tenants:
            raise ConstraintViolation(f"customers: no tenant {tenant_id}")
        return customer_sync.import_rows(self._session, tenant_id, chunks, full_sync=full_sync, approve=approve)

    def unchanged_digests(self, tenant_id: int) -> set[int]:
        """The source digests of subscriptions unchanged since their import."""
        self._touch()
        return customer_sync.unchanged_digests(self._tables, tenant_id)


def _checked(tenant: Tenant) -> Tenant:
    """The ``tenants`` CHECK constraints a service could break by saving a changed tenant."""
    if tenant.status not in _TENANT_STATUSES:
        raise ConstraintViolation(f"tenants_status_valid: {tenant.status!r}")
    if not tenant.windows:
        raise ConstraintViolation("tenants_windows_not_empty")
    if tenant.rate_per_second is not None and not tenant.rate_per_second > 0:
        raise ConstraintViolation("tenants_rate_positive")
    return tenant
