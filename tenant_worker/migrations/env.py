"""Alembic environment: online migrations only, serialised with an advisory lock."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tenant_worker.adapters.orm import Base

# Any constant works; it only has to be the same for every process running migrations.
MIGRATION_LOCK_ID = 7_346_112_001


def run_migrations_online() -> None:
    """Run migrations in one transaction (except what a migration runs in an autocommit block);
    concurrent upgrades wait for each other instead of colliding."""
    url = context.config.attributes["database_url"]
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        # The lock is held by the session, not the transaction: end the transaction that took it so
        # Alembic owns the next one and a migration can step outside it (CREATE INDEX CONCURRENTLY).
        connection.commit()
        try:
            context.configure(connection=connection, target_metadata=Base.metadata)
            with context.begin_transaction():
                context.run_migrations()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
            connection.commit()
    engine.dispose()


run_migrations_online()
