"""The webhooks' cross-tenant statements (``adapters.delivery_receipts``) on the fake tables."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from tenant_worker.domain.delivery import DeliveryReport, RecordedReport, most_advanced, supersedes
from tests.fakes.tables import FakeSession


class FakeDeliveryReceipts:
    """``domain.storage.DeliveryReceipts`` on the fake tables (units of work run one at a time, so the
    SQL guard's atomicity is the fake's lock)."""

    def __init__(self, session: FakeSession) -> None:
        self._session = session

    def record_reports(self, reports: Sequence[DeliveryReport]) -> list[RecordedReport]:
        """Record each report that supersedes its row's; the reports that did."""
        self._session.statement()
        tables = self._session.tables
        recorded = []
        for report in most_advanced(reports):
            row = tables.reminders.get(report.reminder_id)
            if row is None or row.provider_message_id != report.message_id:
                continue
            if not supersedes(report, row.delivery_status, row.delivery_status_at):
                continue
            tables.reminders[row.id] = dataclasses.replace(
                row,
                delivery_status=report.status,
                delivery_status_at=report.status_at,
                delivery_reason=report.reason,
                delivery_error_code=report.error_code,
            )
            recorded.append(RecordedReport(row.tenant_id, tables.tenants[row.tenant_id].slug, report))
        return recorded

    def tenants_for_number(self, number: str) -> list[str]:
        """Tenants whose numeric originator has the digits of ``number``."""
        self._session.statement()
        digits = "".join(ch for ch in number if ch.isdigit())
        return sorted(
            tenant.slug
            for tenant in self._session.tables.tenants.values()
            if digits and tenant.originator.lstrip("+").isdigit() and tenant.originator.lstrip("+") == digits
        )

    def customers_with_phone(self, tenant_id: int, phone: str) -> list[str]:
        """The tenant's customers with ``phone``, by external reference."""
        self._session.statement()
        rows = sorted(self._session.tables.customers.values(), key=lambda row: row.id)
        return [row.external_ref for row in rows if row.tenant_id == tenant_id and row.phone == phone]
