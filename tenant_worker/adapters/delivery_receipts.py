"""The webhooks' statements on PostgreSQL: status reports onto the ledger, replies to customers.

A batch of status reports is one ``UPDATE ... FROM unnest(...)``: each report finds its row by primary
key (the reference is the reminder id) and must name the row's ``provider_message_id`` too, so a
forged or mistyped reference matches nothing. The ``WHERE`` guard is ``domain.delivery.supersedes``
in SQL, evaluated on the row as locked by the update itself, so two reports of one SMS racing each
other still leave the most advanced one, and a duplicate writes nothing. ``updated_at`` stays: it
is when the reminder ended (``reminders retry --since``, retention), not when MessageBird spoke.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.orm import Session

from tenant_worker.domain.delivery import DELIVERY_RANK, DeliveryReport, RecordedReport, most_advanced

_RANK = "CASE r.delivery_status {} ELSE -1 END".format(
    " ".join(f"WHEN '{status}' THEN {rank}" for status, rank in DELIVERY_RANK.items())
)

_RECORD_SQL = f"""
    UPDATE reminders AS r
       SET delivery_status = v.status, delivery_status_at = v.status_at,
           delivery_reason = v.reason, delivery_error_code = v.error_code
      FROM unnest(CAST(:ids AS bigint[]), CAST(:message_ids AS text[]), CAST(:statuses AS text[]),
                  CAST(:ats AS timestamptz[]), CAST(:reasons AS text[]), CAST(:codes AS integer[]),
                  CAST(:ranks AS integer[]))
           AS v(id, message_id, status, status_at, reason, error_code, rank),
           tenants AS t
     WHERE r.id = v.id AND r.provider_message_id = v.message_id AND t.id = r.tenant_id
       AND (r.delivery_status IS NULL
            OR ({_RANK}, coalesce(r.delivery_status_at, '-infinity')) < (v.rank, v.status_at))
    RETURNING r.id, r.tenant_id, t.slug
"""


class SqlDeliveryReceipts:
    """``domain.storage.DeliveryReceipts`` on PostgreSQL, in the unit of work's session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def record_reports(self, reports: Sequence[DeliveryReport]) -> list[RecordedReport]:
        """Record the reports that supersede their row's (see the module docs); those that did."""
        batch = most_advanced(reports)
        if not batch:
            return []
        rows = self.session.execute(
            text(_RECORD_SQL),
            {
                "ids": [r.reminder_id for r in batch],
                "message_ids": [r.message_id for r in batch],
                "statuses": [r.status for r in batch],
                "ats": [r.status_at for r in batch],
                "reasons": [r.reason for r in batch],
                "codes": [r.error_code for r in batch],
                "ranks": [r.rank for r in batch],
            },
        ).all()
        by_id = {r.reminder_id: r for r in batch}
        return [RecordedReport(tenant_id, slug, by_id[reminder_id]) for reminder_id, tenant_id, slug in rows]

    def tenants_for_number(self, number: str) -> list[str]:
        """Tenants whose numeric originator has the digits of ``number`` (a small table: scanned)."""
        digits = "".join(ch for ch in number if ch.isdigit())
        if not digits:
            return []
        return list(
            self.session.scalars(
                text("""
                    SELECT slug FROM tenants
                     WHERE originator ~ '^\\+?[0-9]+$' AND regexp_replace(originator, '[^0-9]', '', 'g') = :digits
                     ORDER BY slug
                """),
                {"digits": digits},
            )
        )

    def customers_with_phone(self, tenant_id: int, phone: str) -> list[str]:
        """The tenant's customers with ``phone`` (erased ones have none), by external reference."""
        return list(
            self.session.scalars(
                text("SELECT external_ref FROM customers WHERE tenant_id = :tenant_id AND phone = :phone ORDER BY id"),
                {"tenant_id": tenant_id, "phone": phone},
            )
        )
