"""Migration 0014 on a real PostgreSQL: a subscription unchanged since its import stays recognised
through the change of the state hash (and back), one changed since stays unrecognised."""

from __future__ import annotations

import psycopg
from alembic import command

from tenant_worker.adapters import customer_sync_sql as sql
from tenant_worker.adapters.db import alembic_config
from tests.conftest import own_database

TEXT_HASH = (
    "hashtextextended(ROW(c.name, c.phone, c.opted_out, c.locale,"
    " s.plan, s.amount, s.currency, s.expires_on, s.status)::text, 0)"
)


def recognised(url: str) -> list[str]:
    """The subscriptions ``unchanged_digests`` recognises, by customer."""
    with psycopg.connect(url) as conn:
        query = sql.UNCHANGED_DIGESTS.replace("SELECT sub.import_digest", "SELECT c.external_ref")
        return sorted(row[0] for row in conn.execute(query, {"tenant_id": 1}))


def test_states_unchanged_since_their_import_are_rehashed_both_ways() -> None:
    with own_database("tw_mig", migrate=False) as url:
        command.upgrade(alembic_config(url), "0013")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO tenants (id, slug, name, timezone, originator, queue)"
                " VALUES (1, 'acme', 'Acme', 'UTC', 'Acme', 'reminders.shard.00')"
            )
            for ref in ("kept", "edited"):
                conn.execute(
                    "WITH c AS (INSERT INTO customers (tenant_id, external_ref, name, phone)"
                    "           VALUES (1, %s, 'Ann', '+31612345678') RETURNING id)"
                    " INSERT INTO subscriptions (tenant_id, customer_id, plan, amount, currency, expires_on,"
                    "                            import_digest)"
                    " SELECT 1, id, 'Fiber', 29.95, 'EUR', '2030-01-01', 7 FROM c",
                    (ref,),
                )
            # Both as an import before 0014 stored them; then "edited" is changed by another path.
            stored = f"UPDATE subscriptions s SET import_state = {TEXT_HASH} FROM customers c WHERE c.id = customer_id"
            conn.execute(stored)
            edited = "(SELECT id FROM customers WHERE external_ref = 'edited')"
            conn.execute(f"UPDATE subscriptions SET plan = 'TV' WHERE customer_id = {edited}")

        command.upgrade(alembic_config(url), "head")
        assert recognised(url) == ["kept"]

        command.downgrade(alembic_config(url), "0013")
        with psycopg.connect(url) as conn:
            matching = conn.execute(
                f"SELECT c.external_ref FROM subscriptions s JOIN customers c ON c.id = s.customer_id"
                f" WHERE s.import_state = {TEXT_HASH}"
            ).fetchall()
        assert matching == [("kept",)]
