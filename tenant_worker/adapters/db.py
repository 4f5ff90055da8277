"""PostgreSQL connections (psycopg 3) and schema migrations (Alembic).

Engines are created on first use, never at import time: prefork workers fork after import, and a
pool opened before the fork would be shared by every child.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from tenant_worker.config import ConfigurationError, redact_url
from tenant_worker.constants import DEFAULT_SHARD_COUNT
from tenant_worker.domain.backoff import retry_delay

_T = TypeVar("_T")
log = logging.getLogger(__name__)


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


@contextmanager
def transaction(url: str) -> Iterator[Session]:
    """A session inside one transaction: committed on success, rolled back on any error."""
    with session_factory(url).begin() as session:
        yield session


def run_with_retry(sessions: sessionmaker[Session], work: Callable[[Session], _T], retry_for: float, what: str) -> _T:
    """Run ``work`` in one transaction; if the connection drops (a failover, ``pg_terminate_backend``,
    a network cut), run it again on a fresh connection with bounded exponential backoff, for up to
    ``retry_for`` seconds. Only for idempotent work: the first try may have committed before the
    connection died. The pool's pre-ping replaces the dead connections on the next checkout."""
    deadline = time.monotonic() + retry_for
    attempt = 0
    while True:
        try:
            with sessions.begin() as session:
                return work(session)
        except DBAPIError as exc:
            if not (exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)):
                raise
            attempt += 1
            delay = retry_delay(attempt, 0.1, 5.0)
            if time.monotonic() + delay > deadline:
                raise
            log.warning("%s: database connection lost (%s); retrying in %.1f s", what, type(exc.orig).__name__, delay)
            time.sleep(delay)


def check_database(url: str) -> None:
    """Fail early with a readable message (no password) when PostgreSQL is unreachable."""
    # A throwaway engine: a pooled connection opened here, in a process that forks workers later,
    # would be shared by every child.
    engine = create_engine(normalize_database_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "connection failed"
        safe = redact_url(make_url(normalize_database_url(url)).render_as_string(hide_password=False))
        raise ConfigurationError(f"cannot connect to PostgreSQL at {safe}: {reason}") from None
    finally:
        engine.dispose()


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
