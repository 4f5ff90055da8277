"""``tenant-worker ledger prune`` end to end on PostgreSQL (a database of its own: the prune acts on every
tenant): a dry run that deletes nothing, then a prune that takes exactly the old rows of past cycles."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from tenant_worker.adapters.db import session_factory
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.domain.localtime import SendingWindow
from tenant_worker.domain.model import TenantSpec
from tests.conftest import customer, own_database, unique_slug
from tests.seeding import seed_customers

TODAY = dt.date(2026, 3, 2)


@pytest.fixture(scope="module")
def retention_url() -> Iterator[str]:
    with own_database("tw_retention") as url:
        yield url


def prune(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "DATABASE_"))}
    env["DATABASE_URL"] = url  # no Redis: the command does without it
    command = [sys.executable, "-m", "tenant_worker.cli", "ledger", "prune", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_the_command_prunes_old_rows_of_past_cycles_and_keeps_the_current_ones(retention_url: str) -> None:
    uow = sql_unit_of_work(session_factory(retention_url))
    spec = TenantSpec(unique_slug("ret"), "Acme", "UTC", "Acme", sending_window=SendingWindow(dt.time(0), dt.time(0)))
    due = TODAY + dt.timedelta(days=3)
    records = [customer(f"r{i}", due) for i in range(5)]
    with uow() as tx:
        tenant = tx.catalog.create_tenant(spec.validated(), 16)
        seed_customers(tx, tenant.id, records)
    with uow() as tx:
        ids = [reminder_id for reminder_id, _ in tx.ledger(tenant.id).claim_due_reminders(TODAY, (5, 3, 1))]
    with session_factory(retention_url).begin() as session:
        session.execute(
            text("UPDATE reminders SET status = 'sent', updated_at = now() - interval '2 years' WHERE id = ANY(:ids)"),
            {"ids": ids},
        )
    with uow() as tx:  # three of the five renew: their rows become a past cycle's
        seed_customers(tx, tenant.id, [customer(f"r{i}", due + dt.timedelta(days=365)) for i in range(3)])

    dry = prune(retention_url, "--older-than", "400", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["deleted"] == 3
    done = prune(retention_url, "--older-than", "400", "--batch-size", "2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("3 reminders last changed before "), done.stdout
    with uow() as tx:
        left = tx.ledger(tenant.id).list_reminders()
    assert len(left) == 2
    refused = prune(retention_url, "--older-than", "30")
    assert refused.returncode == 2 and "at least 90 days" in refused.stderr
