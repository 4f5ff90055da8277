"""`tenant-worker reminders list` shows what MessageBird reported for each SMS."""

from __future__ import annotations

import datetime as dt
import json
import subprocess

from sqlalchemy import text

from tests.conftest import BIN, add_customers, customer


def listing(env, slug, *args):
    return subprocess.run(
        [str(BIN / "tenant-worker"), "reminders", "list", "--tenant", slug, *args],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip


def test_reminders_list_shows_the_delivery_status_and_reason(worker_env, sessions, make_tenant):
    tenant = make_tenant()
    due = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=3)
    add_customers(sessions, tenant, [customer("a", due), customer("b", due)])
    at = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    with sessions.begin() as session:
        session.execute(
            text("""
                INSERT INTO reminders (tenant_id, subscription_id, expires_on, window_days, local_date, status,
                                       provider_message_id, sent_at, delivery_status, delivery_status_at,
                                       delivery_reason, delivery_error_code)
                SELECT tenant_id, id, expires_on, 3, CURRENT_DATE, 'sent', 'mb-' || id, now(),
                       CASE WHEN id % 2 = 0 THEN 'delivered' ELSE 'delivery_failed' END,
                       :at, CASE WHEN id % 2 = 0 THEN NULL ELSE 'unknown subscriber' END,
                       CASE WHEN id % 2 = 0 THEN NULL ELSE 1 END
                  FROM subscriptions WHERE tenant_id = :tenant_id
            """),
            {"tenant_id": tenant.id, "at": at},
        )
    rows = json.loads(listing(worker_env, tenant.slug, "--json"))
    assert sorted(r["delivery_status"] for r in rows) == ["delivered", "delivery_failed"]
    failed = next(r for r in rows if r["delivery_status"] == "delivery_failed")
    assert (failed["delivery_reason"], failed["delivery_error_code"]) == ("unknown subscriber", 1)
    assert failed["delivery_status_at"].startswith("2026-03-02 09:00:00")

    table = listing(worker_env, tenant.slug)
    assert "DELIVERY" in table.splitlines()[0]
    assert "delivery_failed" in table and "unknown subscriber" in table and "delivered" in table
