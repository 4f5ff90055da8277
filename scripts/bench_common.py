"""Shared helpers of the benchmark scripts: start (or take the addresses of) PostgreSQL, a
password-protected Redis and the MessageBird emulator, and bulk-load tenants with due subscriptions."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import redis
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from tenant_worker.adapters.sql_storage import SqlUnitOfWork
from tenant_worker.config import build_redis_url
from tenant_worker.constants import DEFAULT_SHARD_COUNT
from tenant_worker.domain.localtime import SendingWindow
from tenant_worker.domain.model import TenantSpec
from tenant_worker.services.tenants import create_tenant

BIN = Path(sys.executable).parent
PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_server(url: str | None, password: str | None = None) -> Iterator[str]:
    """The given Redis URL, or a fresh ``redis-server --requirepass`` on a free port."""
    if url:
        yield url
        return
    port, password = free_port(), password or secrets.token_hex(12)
    workdir = tempfile.mkdtemp(prefix="bench-redis-")
    process = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1",
         "--requirepass", password, "--save", "", "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = build_redis_url("127.0.0.1", port, 0, password)
    for _ in range(100):
        with contextlib.suppress(redis.ConnectionError):
            if redis.Redis.from_url(url).ping():
                break
        time.sleep(0.05)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(10)


@contextlib.contextmanager
def database(url: str | None) -> Iterator[str]:
    """The given database URL, or a fresh migrated database on the local PostgreSQL (dropped after)."""
    from tenant_worker.adapters.db import get_engine, upgrade_database

    if url:
        upgrade_database(url)
        yield url
        return
    name = f"tw_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade_database(url)
    try:
        yield url
    finally:
        get_engine(url).dispose()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def emulator(url: str | None, latency: float, rate_limit: float, access_key: str) -> Iterator[str]:
    """The given emulator URL, or ``python -m tenant_worker_dev.emulators.messagebird`` in a subprocess."""
    if url:
        yield url
        return
    args = [sys.executable, "-m", "tenant_worker_dev.emulators.messagebird", "--latency", str(latency),
            "--access-key", access_key]  # fmt: skip
    if rate_limit:
        args += ["--rate-limit", str(rate_limit)]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    try:
        yield line.rsplit(" ", 1)[-1].strip()
    finally:
        process.terminate()
        process.wait(10)


def add_tenant(sessions: sessionmaker[Session], slug: str, subscriptions: int, due: int, horizon_days: int) -> int:
    """A tenant with ``subscriptions`` customers, of which ``due`` expire within the next 5 days and
    the rest spread over ``horizon_days``; loaded with set-based SQL, not the ORM."""
    with SqlUnitOfWork(sessions) as tx:
        session = tx.session
        # No quiet hours: a benchmark measures sending whatever the hour of the run.
        always = SendingWindow(dt.time(0, 0), dt.time(0, 0))
        spec = TenantSpec(slug, slug, "UTC", "BenchNet", sending_window=always)
        tenant_id = create_tenant(tx, spec, shard_count=DEFAULT_SHARD_COUNT).id
        session.execute(
            text("""
                WITH c AS (
                    INSERT INTO customers (tenant_id, external_ref, name, phone)
                    SELECT :t, 'c' || g, 'Customer ' || g, '+3161' || lpad(((:t * 7919 + g) % 10000000)::text, 7, '0')
                      FROM generate_series(1, :n) g
                    RETURNING id, external_ref)
                INSERT INTO subscriptions (tenant_id, customer_id, plan, amount, currency, expires_on)
                SELECT :t, c.id, 'Fiber', 29.95, 'EUR',
                       CASE WHEN substr(c.external_ref, 2)::int <= :due
                            THEN (now() AT TIME ZONE 'UTC')::date + 1 + substr(c.external_ref, 2)::int % 5
                            ELSE (now() AT TIME ZONE 'UTC')::date + 6 + substr(c.external_ref, 2)::int % :horizon
                       END
                  FROM c
            """),
            {"t": tenant_id, "n": subscriptions, "due": due, "horizon": horizon_days},
        )
    return tenant_id


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of ``values``."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


# Constraints and indexes of the bulk-loaded tables, dropped for the load and rebuilt after it
# (building a btree once over sorted input is far cheaper than maintaining it row by row).
_LOADED_TABLES = "('customers'::regclass, 'subscriptions'::regclass)"


def bulk_load(url: str, tenant_ids: list[int], per_tenant: int, due: int, horizon_days: int) -> None:
    """``per_tenant`` customers with one subscription each for every tenant, ``due`` of them expiring
    within the next 5 days, in two ``INSERT ... SELECT generate_series`` statements with the tables'
    secondary indexes and foreign keys dropped during the load and recreated (and validated) after."""
    total = per_tenant * len(tenant_ids)
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        fks = conn.execute(f"""
            SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
             WHERE contype = 'f' AND (conrelid IN {_LOADED_TABLES} OR confrelid IN {_LOADED_TABLES})""").fetchall()
        uniques = conn.execute(f"""
            SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
             WHERE contype = 'u' AND conrelid IN {_LOADED_TABLES}""").fetchall()
        indexes = conn.execute(f"""
            SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index
             WHERE indrelid IN {_LOADED_TABLES} AND NOT indisprimary
               AND indexrelid NOT IN (SELECT conindid FROM pg_constraint WHERE contype IN ('u', 'p'))""").fetchall()
        for table, name, _ in [*fks, *uniques]:
            conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        first = int(conn.execute("SELECT coalesce(max(id), 0) + 1 FROM customers").fetchone()[0])  # type: ignore[index]
        # g numbers customers 0..total-1; tenant k holds block k, local number n = 1..per_tenant.
        params = {"tids": tenant_ids, "per": per_tenant, "total": total, "first": first, "due": due, "h": horizon_days}
        conn.execute(
            """INSERT INTO customers (id, tenant_id, external_ref, name, phone)
               SELECT %(first)s + g, (%(tids)s::bigint[])[1 + g / %(per)s], 'c' || (1 + g %% %(per)s),
                      'Customer ' || (1 + g %% %(per)s), '+3161' || lpad((g %% 10000000)::text, 7, '0')
                 FROM generate_series(0, %(total)s - 1) g""",
            params,
        )
        conn.execute(
            """INSERT INTO subscriptions (id, tenant_id, customer_id, plan, amount, currency, expires_on)
               SELECT %(first)s + g, (%(tids)s::bigint[])[1 + g / %(per)s], %(first)s + g, 'Fiber', 29.95, 'EUR',
                      CASE WHEN 1 + g %% %(per)s <= %(due)s
                           THEN (now() AT TIME ZONE 'UTC')::date + 1 + (1 + g %% %(per)s) %% 5
                           ELSE (now() AT TIME ZONE 'UTC')::date + 6 + (1 + g %% %(per)s) %% %(h)s END
                 FROM generate_series(0, %(total)s - 1) g""",
            params,
        )
        for table in ("customers", "subscriptions"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        for table, name, definition in uniques:
            conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        for _, definition in indexes:
            conn.execute(definition)
        for table, name, definition in fks:
            conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        conn.execute("VACUUM ANALYZE customers")
        conn.execute("VACUUM ANALYZE subscriptions")
