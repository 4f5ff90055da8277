"""Migration 0013 on a real PostgreSQL: stored templates stop writing the currency twice, existing
customers keep the tenant's language, tenants get the long date style, and it downgrades cleanly."""

from __future__ import annotations

import psycopg
from alembic import command

from tenant_worker.adapters.db import alembic_config
from tests.conftest import own_database

BODIES = {
    "Pay {amount} {currency} now": "Pay {amount} now",
    "{currency} {amount} due, {customer_name}": "{amount} due, {customer_name}",
    "Pay {amount_raw} {currency} or {amount}": "Pay {amount_raw} {currency} or {amount}",
}


def test_templates_write_the_currency_once_and_customers_keep_the_tenants_language() -> None:
    with own_database("tw_mig", migrate=False) as url:
        command.upgrade(alembic_config(url), "0012")
        with psycopg.connect(url, autocommit=True) as conn:
            tenant_id = conn.execute(
                "INSERT INTO tenants (slug, name, timezone, originator, queue)"
                " VALUES ('acme', 'Acme', 'UTC', 'Acme', 'reminders.shard.00') RETURNING id"
            ).fetchone()[0]
            for window, body in enumerate(BODIES, start=1):
                conn.execute(
                    "INSERT INTO sms_templates (tenant_id, window_days, body) VALUES (%s, %s, %s)",
                    (tenant_id, window, body),
                )
            conn.execute("INSERT INTO customers (tenant_id, external_ref, name) VALUES (%s, 'c1', 'Ann')", (tenant_id,))

        command.upgrade(alembic_config(url), "head")

        with psycopg.connect(url) as conn:
            stored = [row[0] for row in conn.execute("SELECT body FROM sms_templates ORDER BY window_days")]
            tenant = conn.execute("SELECT date_style, normalize_text FROM tenants").fetchone()
            locale = conn.execute("SELECT locale FROM customers").fetchone()
        assert stored == list(BODIES.values())
        assert (tenant, locale) == (("long", False), (None,))
        command.downgrade(alembic_config(url), "0012")
        command.upgrade(alembic_config(url), "head")
