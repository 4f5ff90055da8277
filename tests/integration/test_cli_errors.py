"""What the CLI says when a service fails half-way through a command (after its pre-flight checks passed).

The exceptions are the real ones the drivers raise against real services; :func:`explain` asks the same
checks as the pre-flight what is wrong now, so the line names the cause and the fix, never a password.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import replace

import psycopg
import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from tenant_worker.adapters.db import check_database, normalize_database_url, upgrade_database
from tenant_worker.cli_errors import explain
from tenant_worker.config import Settings, build_redis_url
from tenant_worker.errors import EXIT_FAILED, EXIT_NOT_READY, EXIT_UNAVAILABLE, DatabaseNotReady
from tests.conftest import PG_ADMIN_URL, REDIS_PASSWORD, free_port


@pytest.fixture
def scratch_database() -> Iterator[str]:
    """An empty database of this test's own."""
    name = f"tw_scratch_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_error(url: str, statement: str) -> SQLAlchemyError:
    engine = create_engine(normalize_database_url(url), poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(text(statement))
    except SQLAlchemyError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError(f"{statement} did not fail")


def test_redis_going_down_during_a_command_is_status_4_with_the_fix(settings: Settings) -> None:
    down = replace(settings, redis_url=build_redis_url("127.0.0.1", free_port(), 0, REDIS_PASSWORD))
    with pytest.raises(redis.ConnectionError) as caught:
        redis.Redis.from_url(down.redis_url).ping()

    status, line = explain(caught.value, down)

    assert status == EXIT_UNAVAILABLE
    assert line.startswith("error: cannot connect to Redis at 127.0.0.1:") and "start Redis" in line
    assert REDIS_PASSWORD not in line and "\n" not in line


def test_a_redis_error_that_has_passed_says_to_run_the_command_again(settings: Settings) -> None:
    status, line = explain(redis.TimeoutError("Timeout reading from socket"), settings)

    assert status == EXIT_UNAVAILABLE
    assert "failed during the command (TimeoutError: Timeout reading from socket); it answers now" in line


def test_a_database_dropped_during_a_command_is_status_5_with_the_fix(settings: Settings) -> None:
    missing = replace(settings, database_url=settings.database_url.rsplit("/", 1)[0] + f"/tw_gone_{uuid.uuid4().hex}")
    exc = database_error(missing.database_url, "SELECT 1")

    status, line = explain(exc, missing)

    assert status == EXIT_NOT_READY and "does not exist; create it (createdb tw_gone_" in line


def test_a_statement_the_database_refuses_is_status_1_with_the_reason(settings: Settings) -> None:
    exc = database_error(settings.database_url, "SELECT 1/0")

    status, line = explain(exc, settings)

    assert status == EXIT_FAILED
    assert "refused a statement: DataError: division by zero" in line and "--debug" in line


def test_an_unexpected_error_is_status_1_and_points_at_debug() -> None:
    status, line = explain(RuntimeError("something odd\nsecond line"), None)

    assert (status, line) == (
        EXIT_FAILED,
        "error: unexpected RuntimeError: something odd; rerun with --debug for the traceback",
    )


def test_a_database_behind_the_newest_migration_is_not_ready(scratch_database: str) -> None:
    upgrade_database(scratch_database, revision="0004")

    with pytest.raises(DatabaseNotReady) as caught:
        check_database(scratch_database, migrated=True)

    assert re.search(
        r"is at migration 0004, this version needs \d{4}: run `tenant-worker db upgrade`$", str(caught.value)
    )


def test_a_database_migrated_by_a_newer_version_is_not_ready_either(scratch_database: str) -> None:
    with psycopg.connect(scratch_database.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('9999')")

    with pytest.raises(DatabaseNotReady, match="at migration 9999, which this version of tenant-worker does not know"):
        check_database(scratch_database, migrated=True)
