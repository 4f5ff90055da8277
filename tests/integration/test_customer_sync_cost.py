"""A small import (an HTTP API request's rows) costs its own rows, not the tenant's size: counted by
PostgreSQL itself (``pg_stat_xact_user_tables``: the rows read from each table)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from tenant_worker.adapters.sql_storage import SqlUnitOfWork
from tenant_worker.services.customers import ImportOptions, SourceRow, sync_customers
from tests.conftest import new_phone

TENANT_SIZE, BATCH = 3000, 50
EXPIRES = dt.date(2030, 6, 1)


def rows(refs: list[str], expires_on: dt.date) -> list[SourceRow]:
    """Upsert rows as the API hands them to the service."""
    cells = {"plan": "Fiber 100", "amount": "29.95", "currency": "EUR", "expires_on": expires_on.isoformat(),
             "opted_out": "false", "status": "active", "subscription_ref": ""}  # fmt: skip
    return [
        SourceRow.of(number, {"external_ref": ref, "name": f"Customer {ref}", "phone": new_phone(), **cells})
        for number, ref in enumerate(refs, start=1)
    ]


def rows_read(tx: SqlUnitOfWork) -> dict[str, int]:
    """Rows this connection read from customers and subscriptions (sequential and by index) that are
    not yet in the cumulative statistics: this transaction's, and maybe its predecessors' (PostgreSQL
    flushes them at most once a second), so take the difference within one transaction."""
    result = tx.session.execute(
        text("""
            SELECT relname, coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)
              FROM pg_stat_xact_user_tables WHERE relname IN ('customers', 'subscriptions')
        """)
    )
    return {name: int(count) for name, count in result}


def test_a_small_upsert_reads_its_own_rows_not_the_tenants(sessions, make_tenant):
    tenant = make_tenant()
    with SqlUnitOfWork(sessions) as tx:
        sync_customers(tx, tenant.slug, rows([f"c{i}" for i in range(TENANT_SIZE)], EXPIRES), ImportOptions())
    with sessions.begin() as session:
        session.execute(text("ANALYZE customers; ANALYZE subscriptions"))
    renewed = EXPIRES + dt.timedelta(days=30)
    batch = rows([f"c{i}" for i in range(BATCH // 2)] + [f"new{i}" for i in range(BATCH // 2)], renewed)

    with SqlUnitOfWork(sessions) as tx:
        before = rows_read(tx)
        report = sync_customers(tx, tenant.slug, batch, ImportOptions(allow_rejects=True))
        read = {table: count - before.get(table, 0) for table, count in rows_read(tx).items()}

    assert (report.counts.created, report.counts.renewed, report.rejected) == (BATCH // 2, BATCH // 2, 0)
    assert read and all(count <= 10 * BATCH for count in read.values()), read
