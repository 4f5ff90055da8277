"""Helpers of the tenant-route tests: rows for the upsert, and reminders put in the ledger through the
ports (the API only reads it), so each test sets up exactly the rows it asserts on."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text

from tenant_worker.adapters.db import session_factory
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tests.conftest import new_phone
from tests.integration.api.conftest import ApiServer, ApiTenant


def row(ref: str, expires_on: dt.date | str = "2030-01-31", **fields: Any) -> dict[str, Any]:
    """One upsert row: a customer with one subscription."""
    return {"external_ref": ref, "name": f"Customer {ref}", "phone": new_phone(), "plan": "Fiber 100",
            "amount": "29.95", "currency": "EUR", "expires_on": str(expires_on), **fields}  # fmt: skip


def claim(server: ApiServer, tenant: ApiTenant, today: dt.date) -> list[int]:
    """Record the tenant's reminders due on ``today`` (as its sweep would); their ids, oldest first."""
    with sql_unit_of_work(session_factory(server.database_url))() as tx:
        claimed = tx.ledger(tenant.tenant.id).claim_due_reminders(today, tenant.tenant.windows)
    return sorted(reminder_id for reminder_id, _ in claimed)


def set_reminders(server: ApiServer, ids: Sequence[int], **columns: Any) -> None:
    """Put ledger rows in a state a send and its delivery receipt would leave them in."""
    assignments = ", ".join(f"{name} = :{name}" for name in columns)
    with session_factory(server.database_url).begin() as session:
        session.execute(text(f"UPDATE reminders SET {assignments} WHERE id = ANY(:ids)"), {"ids": list(ids), **columns})
