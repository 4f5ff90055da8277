"""`tenant-worker customers show|remove|opt-out|erase` as an operator runs them: what they print, their
exit statuses, one-line errors, the confirmation erasure asks for, and that they work with Redis down."""

from __future__ import annotations

import datetime as dt
import json
import subprocess

import pytest

from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.services.sweep import sweep_tenant
from tenant_worker.services.tenants import local_today
from tests.conftest import BIN, RecordingQueue, add_customers, customer, new_phone


def cli(env, *args):
    """``tenant-worker customers ...`` with no terminal on stdin (as in a script or CI)."""
    return subprocess.run(
        [str(BIN / "tenant-worker"), "customers", *args],
        env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def ok(result):
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def one_line_error(result, status=2):
    assert result.returncode == status, result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    return result.stderr


@pytest.fixture
def acme(sessions, settings, make_tenant):
    """A tenant with Ada (phone known) and Bob, each with a pending reminder, claimed today."""
    tenant = make_tenant()
    due = local_today(tenant.timezone) + dt.timedelta(days=3)
    phone = new_phone()
    add_customers(sessions, tenant, [customer("ada", due, phone=phone, name="Ada Lovelace"), customer("bob", due)])
    sweep_tenant(sql_unit_of_work(sessions), tenant.slug, RecordingQueue(), settings)
    return tenant, phone


def test_show_masks_the_phone_in_text_and_gives_everything_in_json(worker_env, acme):
    tenant, phone = acme
    text = ok(cli(worker_env, "show", tenant.slug, "ada"))
    assert text.startswith(f"customer ada of {tenant.slug}: Ada Lovelace\n")
    assert f"phone {'*' * (len(phone) - 3)}{phone[-3:]}, opted out: no, active" in text
    assert phone not in text and phone[1:] not in text
    assert "Fiber 100" in text and " pending " in text
    data = json.loads(ok(cli(worker_env, "show", tenant.slug, "ada", "--json")))
    assert (data["name"], data["phone"], data["opted_out"], data["removed_at"], data["erased_at"]) == (
        "Ada Lovelace",
        phone,
        False,
        None,
        None,
    )
    [subscription] = data["subscriptions"]
    assert (subscription["plan"], subscription["amount"], subscription["status"]) == ("Fiber 100", "29.95", "active")
    [reminder] = data["reminders"]
    assert (reminder["window_days"], reminder["status"], reminder["skip_reason"]) == (3, "pending", None)


def test_unknown_tenant_or_customer_is_status_2_with_one_line(worker_env, acme):
    tenant, _ = acme
    for command in ("show", "remove", "opt-out", "erase"):
        extra = ["--yes"] if command == "erase" else []
        unknown_tenant = one_line_error(cli(worker_env, command, "no-such-tenant", "ada", *extra))
        assert "unknown tenant 'no-such-tenant'" in unknown_tenant
        unknown_customer = one_line_error(cli(worker_env, command, tenant.slug, "zed", *extra))
        assert f"unknown customer 'zed' of tenant '{tenant.slug}'" in unknown_customer


def test_remove_cancels_pending_reminders_and_a_second_run_changes_nothing(worker_env, acme):
    tenant, _ = acme
    assert ok(cli(worker_env, "remove", tenant.slug, "ada")).strip() == (
        f"customer ada of {tenant.slug} removed; 1 pending reminders cancelled"
    )
    again = json.loads(ok(cli(worker_env, "remove", tenant.slug, "ada", "--json")))
    assert (again["changed"], again["cancelled"], again["sending"]) == (False, 0, 0)
    shown = json.loads(ok(cli(worker_env, "show", tenant.slug, "ada", "--json")))
    assert shown["removed_at"] and shown["subscriptions"][0]["removed_at"]
    assert [(r["status"], r["skip_reason"]) for r in shown["reminders"]] == [("skipped", "removed")]
    bob = json.loads(ok(cli(worker_env, "show", tenant.slug, "bob", "--json")))
    assert [r["status"] for r in bob["reminders"]] == ["pending"] and bob["removed_at"] is None


def test_opt_out_cancels_pending_reminders_and_undo_opts_back_in(worker_env, acme):
    tenant, _ = acme
    assert ok(cli(worker_env, "opt-out", tenant.slug, "ada")).strip() == (
        f"customer ada of {tenant.slug} opted out; 1 pending reminders cancelled"
    )
    shown = json.loads(ok(cli(worker_env, "show", tenant.slug, "ada", "--json")))
    assert shown["opted_out"] is True and shown["opted_out_at"]  # when, recorded
    assert [(r["status"], r["skip_reason"]) for r in shown["reminders"]] == [("skipped", "opted_out")]
    assert "was already opted out" in ok(cli(worker_env, "opt-out", tenant.slug, "ada"))
    assert ok(cli(worker_env, "opt-out", tenant.slug, "ada", "--undo")).strip() == (
        f"customer ada of {tenant.slug} opted back in"
    )
    back = json.loads(ok(cli(worker_env, "show", tenant.slug, "ada", "--json")))
    assert (back["opted_out"], back["opted_out_at"]) == (False, None)


def test_erase_needs_confirmation_then_forgets_the_customer(worker_env, acme):
    tenant, phone = acme
    unconfirmed = one_line_error(cli(worker_env, "erase", tenant.slug, "ada"))
    assert "--yes" in unconfirmed and "(1 subscriptions, 1 reminders)" in unconfirmed
    assert json.loads(ok(cli(worker_env, "show", tenant.slug, "ada", "--json")))["phone"] == phone

    erased = json.loads(ok(cli(worker_env, "erase", tenant.slug, "ada", "--yes", "--json")))
    assert (erased["erased"], erased["subscriptions"], erased["reminders"], erased["cancelled"]) == (True, 1, 1, 1)
    gone = one_line_error(cli(worker_env, "show", tenant.slug, "ada"))
    assert "unknown customer 'ada'" in gone and "erased" in gone
    again = one_line_error(cli(worker_env, "erase", tenant.slug, "ada", "--yes"))
    assert "unknown customer 'ada'" in again


def test_the_customer_commands_work_with_redis_down(worker_env, acme):
    tenant, _ = acme
    env = dict(worker_env, REDIS_URL="redis://127.0.0.1:1/0")
    assert "Ada Lovelace" in ok(cli(env, "show", tenant.slug, "ada"))
    assert "removed" in ok(cli(env, "remove", tenant.slug, "bob"))
