"""Migration 0002 back-fills the shard map of tenants created before it, on a real PostgreSQL."""

from __future__ import annotations

import psycopg
from alembic import command

from tenant_worker.adapters.db import alembic_config
from tenant_worker.domain.shards import shard_for
from tests.conftest import own_database


def test_existing_tenants_get_their_hash_shard_under_the_configured_count() -> None:
    with own_database("tw_mig", migrate=False) as url:
        command.upgrade(alembic_config(url), "0001")
        with psycopg.connect(url, autocommit=True) as conn:
            for slug in ("alpha", "beta", "gamma"):
                conn.execute(
                    "INSERT INTO tenants (slug, name, timezone, originator) VALUES (%s, %s, 'UTC', 'Net')", (slug, slug)
                )
        command.upgrade(alembic_config(url, shard_count=4), "head")
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT id, queue, rate_per_second FROM tenants ORDER BY id").fetchall()
        assert [(queue, rate) for _, queue, rate in rows] == [
            (f"reminders.shard.{shard_for(tenant_id, 4):02d}", None) for tenant_id, _, _ in rows
        ]
        command.downgrade(alembic_config(url), "0001")
        command.upgrade(alembic_config(url), "head")
