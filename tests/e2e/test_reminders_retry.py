"""`tenant-worker reminders retry` as an operator runs it, after MessageBird refused some reminders
(422) and others ended unknown (no answer in time): it shows the count, asks, reopens only what it
is told to, never touches a sent reminder or another tenant, and the real worker sends them again."""

from __future__ import annotations

import datetime as dt
import json
import subprocess

import pytest
from sqlalchemy import text

from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.services.sweep import sweep_tenant
from tenant_worker.services.tenants import local_today
from tenant_worker_dev.emulators.messagebird import Fault
from tests.conftest import BIN, add_customers, customer, new_phone, wait_until
from tests.integration.test_sending import reminders, settled


def retry(env, *args):
    """``tenant-worker reminders retry``, with no terminal on stdin (as in a script or CI)."""
    return subprocess.run(
        [str(BIN / "tenant-worker"), "reminders", "retry", *args],
        env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def ledger(sessions, tenant):
    """Everything about each row that a retry could change."""
    return {
        row.id: (row.status, row.updated_at, row.attempts, row.provider_message_id, row.last_error, row.enqueued_at)
        for row in reminders(sessions, tenant.id)
    }


def accepted_by(emulator, phone):
    return [r for r in emulator.accepted() if r.recipients == [phone.lstrip("+")]]


def one_line_error(result):
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


@pytest.fixture
def ended_badly(sessions, settings, queue, make_tenant, emulator, celery_worker):
    """A tenant whose reminders ended 4 failed (2 of them a week ago), 2 unknown and 2 sent, and a
    second tenant with 2 failed reminders; all through the real worker and the emulator."""
    tenant, other = make_tenant(), make_tenant()
    due = local_today(tenant.timezone) + dt.timedelta(days=3)
    phones = {kind: [new_phone() for _ in range(count)] for kind, count in (("failed", 4), ("unknown", 2), ("sent", 2))}
    for phone in phones["failed"]:
        emulator.add_faults(phone, [Fault.status(422)])
    for phone in phones["unknown"]:
        # Accepted only after the worker stopped waiting (MESSAGEBIRD_READ_TIMEOUT=1): it did go out.
        emulator.add_faults(phone, [Fault.slow(1.5)])
    add_customers(sessions, tenant, [customer(p, due, p) for kind in phones.values() for p in kind])
    other_phones = [new_phone() for _ in range(2)]
    for phone in other_phones:
        emulator.add_faults(phone, [Fault.status(422)])
    add_customers(sessions, other, [customer(p, due, p) for p in other_phones])
    for swept in (tenant, other):
        sweep_tenant(sql_unit_of_work(sessions), swept.slug, queue, settings)
    rows = settled(sessions, tenant.id, 8)
    settled(sessions, other.id, 2)
    status_of = {row.id: row.status for row in rows}
    assert sorted(status_of.values()) == ["failed"] * 4 + ["sent"] * 2 + ["unknown"] * 2
    failed_ids = sorted(i for i, s in status_of.items() if s == "failed")
    old = failed_ids[:2]
    with sessions.begin() as session:
        session.execute(
            text("UPDATE reminders SET updated_at = now() - interval '7 days' WHERE id = ANY(:ids)"), {"ids": old}
        )
    return tenant, other, phones, old


def test_retry_reopens_only_what_it_is_told_and_the_worker_sends_it_again(worker_env, sessions, emulator, ended_badly):
    tenant, other, phones, old_failed = ended_badly
    slug = tenant.slug
    start, other_start = ledger(sessions, tenant), ledger(sessions, other)
    sent_rows = {i: row for i, row in start.items() if row[0] == "sent"}
    three_days_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=3)).isoformat()

    dry = retry(worker_env, "--tenant", slug, "--status", "failed", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.strip() == f"4 failed reminders of {slug} would be sent again (dry run, nothing changed)"
    recent = json.loads(retry(worker_env, "--tenant", slug, "--status", "failed", "--since", three_days_ago,
                              "--dry-run", "--json").stdout)  # fmt: skip
    assert (recent["matching"], recent["reopened"]) == (2, 0)

    unconfirmed = one_line_error(retry(worker_env, "--tenant", slug, "--status", "failed"))
    assert "4 failed reminders" in unconfirmed and "--yes" in unconfirmed
    duplicates = one_line_error(retry(worker_env, "--tenant", slug, "--status", "unknown", "--yes"))
    assert "--allow-duplicates" in duplicates and "twice" in duplicates
    unknown_tenant = retry(worker_env, "--tenant", "no-such-tenant", "--status", "failed", "--yes")
    assert unknown_tenant.returncode == 2 and "unknown tenant 'no-such-tenant'" in unknown_tenant.stderr
    assert "Traceback" not in unknown_tenant.stderr
    assert ledger(sessions, tenant) == start

    # Only the reminders that failed since --since; the worker sends them (the 422 was a one-off).
    reopened = json.loads(retry(worker_env, "--tenant", slug, "--status", "failed", "--since", three_days_ago,
                                "--yes", "--json").stdout)  # fmt: skip
    assert reopened["reopened"] == 2 and reopened["published"] == 2 and reopened["error"] is None
    rows = wait_until(lambda: _with_status(sessions, tenant, "sent", 4), 30, "the 2 recent failed reminders sent")
    assert sorted(i for i, row in ledger(sessions, tenant).items() if row[0] == "failed") == old_failed
    recent_failed = [i for i, row in start.items() if row[0] == "failed" and i not in old_failed]
    assert all(rows[i].attempts == 1 and rows[i].provider_message_id for i in recent_failed)

    everything = retry(worker_env, "--tenant", slug, "--status", "failed", "--yes")
    assert everything.returncode == 0, everything.stderr
    assert everything.stdout.startswith(f"2 reminders of {slug} back to pending")
    wait_until(lambda: _with_status(sessions, tenant, "sent", 6), 30, "the 2 older failed reminders sent")
    for phone in phones["failed"]:
        assert len(accepted_by(emulator, phone)) == 1

    again = retry(worker_env, "--tenant", slug, "--status", "failed", "--yes")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"no failed reminders of {slug} to send again; nothing changed"

    # Unknown ones did reach MessageBird: resending them is a duplicate the operator has to ask for.
    allowed = retry(worker_env, "--tenant", slug, "--status", "unknown", "--allow-duplicates", "--yes")
    assert allowed.returncode == 0 and allowed.stdout.startswith(f"2 reminders of {slug} back to pending")
    wait_until(lambda: _with_status(sessions, tenant, "sent", 8), 30, "the 2 unknown reminders sent")
    for phone in phones["unknown"]:
        assert len(accepted_by(emulator, phone)) == 2

    end = ledger(sessions, tenant)
    assert {i: end[i] for i in sent_rows} == sent_rows  # sent reminders were never touched
    for phone in phones["sent"]:
        assert len(accepted_by(emulator, phone)) == 1
    assert ledger(sessions, other) == other_start  # nor were another tenant's
    assert {row[0] for row in other_start.values()} == {"failed"}


def _with_status(sessions, tenant, status, count):
    rows = {row.id: row for row in reminders(sessions, tenant.id)}
    return rows if sum(1 for row in rows.values() if row.status == status) == count else None
