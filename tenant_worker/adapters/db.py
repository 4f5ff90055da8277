"""PostgreSQL connections (psycopg 3) and schema migrations (Alembic).

Engines are created on first use, never at import time: prefork workers fork after import, and a
pool opened before the fork would be shared by every child.
"""

from __future__ import annotations

import functools
import re
from typing import TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from tenant_worker.config import ConfigurationError, redact_url
from tenant_worker.constants import DEFAULT_SHARD_COUNT
from tenant_worker.errors import DatabaseNotReady, ServiceUnavailable

_T = TypeVar("_T")
UPGRADE = "run `tenant-worker db upgrade`"


def normalize_database_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs (what operators paste) and use the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


@functools.cache
def get_engine(url: str) -> Engine:
    """One pooled engine per URL per process."""
    return create_engine(normalize_database_url(url), pool_pre_ping=True, pool_size=5, max_overflow=10)


@functools.cache
def session_factory(url: str) -> sessionmaker[Session]:
    """Sessions bound to the engine for ``url``; ``expire_on_commit=False`` keeps loaded rows usable.
    One factory per URL and process (it is thread-safe), as every task asks for it."""
    return sessionmaker(get_engine(url), expire_on_commit=False)


def ping_database(url: str) -> None:
    """Run ``SELECT 1`` on a pooled connection (the API's readiness probe, every few seconds: no
    new connection each time); raises the driver's error when PostgreSQL does not answer."""
    with get_engine(url).connect() as conn:
        conn.execute(text("SELECT 1"))


def check_database(url: str, *, migrated: bool = False) -> None:
    """Fail early with a one-line message (no password) that says how to fix it when PostgreSQL is
    unreachable (:class:`ServiceUnavailable`), the database is missing or, with ``migrated``, its
    schema is not at the newest migration (:class:`DatabaseNotReady`), or the login is refused
    (:class:`ConfigurationError`)."""
    safe = redact_url(make_url(normalize_database_url(url)).render_as_string(hide_password=False))
    # A throwaway engine: a pooled connection opened here, in a process that forks workers later,
    # would be shared by every child.
    engine = create_engine(normalize_database_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            current = set(MigrationContext.configure(conn).get_current_heads()) if migrated else set()
    except OperationalError as exc:
        raise connection_problem(safe, str(exc.orig) if exc.orig else "") from None
    finally:
        engine.dispose()
    if migrated:
        problem = schema_problem(safe, current, ScriptDirectory.from_config(alembic_config(url)))
        if problem:
            raise DatabaseNotReady(problem)


def connection_problem(where: str, error: str) -> ConfigurationError:
    """The error for a failed connection to PostgreSQL at ``where``, from the driver's message.

    The driver gives no SQLSTATE for a refused login, so the server's (English) wording is matched;
    anything unrecognised counts as unreachable.
    """
    reason = error.strip().splitlines()[0] if error.strip() else "connection failed"
    if missing := re.search(r'database "(.*)" does not exist', reason):
        return DatabaseNotReady(
            f"cannot connect to PostgreSQL at {where}: {reason}; create it (createdb {missing[1]}), "
            "then run `tenant-worker db upgrade`, or fix DATABASE_URL"
        )
    if re.search(r'password authentication failed|no password supplied|role ".*" does not exist', reason):
        return ConfigurationError(
            f"cannot connect to PostgreSQL at {where}: {reason}; check DATABASE_URL and DATABASE_PASSWORD_FILE "
            "/ DATABASE_PASSWORD (password not shown)"
        )
    return ServiceUnavailable(
        f"cannot connect to PostgreSQL at {where}: {reason}; start PostgreSQL or fix DATABASE_URL"
    )


def schema_problem(where: str, current: set[str], script: ScriptDirectory) -> str | None:
    """Why a database whose schema is at the ``current`` revisions cannot be used by this version of
    the code (whose migrations are ``script``), or None when it is at the newest migration."""
    heads = set(script.get_heads())
    if current == heads:
        return None
    if not current:
        return f"the database at {where} has no tenant-worker tables (migrations not applied): " + UPGRADE
    at, need = ", ".join(sorted(current)), ", ".join(sorted(heads))
    if not current <= {revision.revision for revision in script.walk_revisions()}:
        return (
            f"the database at {where} is at migration {at}, which this version of tenant-worker does not know "
            f"(it needs {need}): run a tenant-worker at least as new as the one that migrated it"
        )
    return f"the database at {where} is at migration {at}, this version needs {need}: " + UPGRADE


def alembic_config(url: str, shard_count: int = DEFAULT_SHARD_COUNT) -> Config:
    """Alembic configuration pointing at the migrations shipped inside the package."""
    config = Config()
    config.set_main_option("script_location", "tenant_worker:migrations")
    config.attributes["database_url"] = normalize_database_url(url)
    # Migration 0002 back-fills existing tenants' shard queues with this count.
    config.attributes["shard_count"] = shard_count
    return config


def upgrade_database(url: str, revision: str = "head", shard_count: int = DEFAULT_SHARD_COUNT) -> None:
    """Apply migrations up to ``revision``; safe to run repeatedly and from several processes."""
    check_database(url)
    command.upgrade(alembic_config(url, shard_count), revision)
