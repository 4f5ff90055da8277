"""Seeding customers for tests through the import production uses (``Catalog.import_rows``).

Tests seed through the real import path rather than a test-only write path, so the rows they start
from are rows an import can produce (amounts rounded to cents, ``removed_at`` cleared by a re-import,
source digests unset). Only the domain is imported here, so the fakes can use it without pulling in
the fixtures of ``tests/conftest.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

from tenant_worker.domain.records import CustomerRecord, ImportChunk, ImportCounts
from tenant_worker.domain.storage import UnitOfWork


def seed_customers(tx: UnitOfWork, tenant_id: int, records: Sequence[CustomerRecord]) -> ImportCounts:
    """Import ``records`` (numbered as a CSV's data lines) into the tenant in ``tx``, not as a full sync,
    and return the plan's counts. A record the import rejects (a repeated customer and subscription
    key, one customer's details differing between rows) fails the seed, so a test never runs on data
    it did not ask for."""
    chunk = ImportChunk(list(enumerate(records, start=2)))
    # Refused when anything is rejected, so a bad seed writes nothing even if the caller catches the error.
    plan, applied = tx.catalog.import_rows(tenant_id, [chunk], full_sync=False, approve=lambda plan: not plan.rejects)
    if not applied:
        raise ValueError(f"the seed's records were rejected: {plan.rejects}")
    return plan.counts
