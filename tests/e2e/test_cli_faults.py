"""Every ``tenant-worker`` subcommand against every service fault: one line, a documented status, no secret.

The matrix runs the real ``tenant-worker`` for each (subcommand, fault) pair: Redis down (a free port
nothing listens on), a wrong Redis password (the test Redis), a database that does not exist, and a
database without migrations. A command that does not need the broken service must still work; one that
does must print exactly one line on stderr and nothing on stdout, and exit with the documented status
(4 unavailable, 2 wrong credentials, 5 database not ready). The cells run a few at a time in a thread
pool (each is a process of its own), so the matrix costs little more than its slowest column.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote, urlsplit

import psycopg
import pytest
from sqlalchemy.orm import Session, sessionmaker

from tenant_worker.adapters.orm import TenantRow
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.config import build_redis_url
from tenant_worker.constants import DEFAULT_SHARD_COUNT
from tenant_worker.domain.model import TenantSpec
from tenant_worker.services.tenants import create_tenant
from tests.conftest import ACCESS_KEY, BIN, PG_ADMIN_URL, REDIS_PASSWORD, customer, free_port, unique_slug
from tests.seeding import seed_customers

WRONG_REDIS_PASSWORD = "wr0ng-Redis#pw"
DATABASE_PASSWORD = "pg-Fault s3cret"
SLUG = unique_slug("faults")

# (subcommand, arguments); {slug}, {csv} and {definition} are filled in per run.
COMMANDS = [
    ("db upgrade", []),
    ("tenant list", []),
    ("tenant show", ["{slug}"]),
    ("tenant create", ["--slug", "{new}", "--name", "N", "--timezone", "UTC", "--originator", "Net"]),
    ("tenant onboard", ["{definition}"]),
    ("tenant offboard", ["{slug}", "--drain-timeout", "1"]),
    ("tenant template", ["{slug}", "Hi {{customer_name}}, {{days_left}} days left"]),
    ("tenant move", ["{slug}", "--shard", "3"]),
    ("customers import", ["{slug}", "{csv}"]),
    ("sweep", ["--tenant", "{slug}"]),
    ("sweep --dry-run", ["--tenant", "{slug}"]),
    ("reminders list", ["--tenant", "{slug}"]),
    ("reminders retry", ["--tenant", "{slug}", "--status", "failed", "--yes"]),
    *[(f"schedule {action}", ["{slug}"]) for action in ("show", "pause", "resume", "remove", "run-now")],
    ("schedule set", ["{slug}", "--time", "09:30"]),
    ("schedule list", []),
    ("schedule sync", []),
    ("queues", []),
    ("worker", ["--without-mingle", "--without-gossip"]),
    ("beat", []),
    # One customer (seeded with the tenant): show, remove and opt-out may run in any order.
    ("customers show", ["{slug}", "kept"]),
    ("customers remove", ["{slug}", "kept"]),
    ("customers opt-out", ["{slug}", "kept"]),
    ("customers erase", ["{slug}", "forgotten", "--yes"]),
    ("api-keys create", ["{slug}", "--name", "faults"]),
    ("api-keys list", ["{slug}"]),
    ("api", ["--port", "{port}"]),
]
WITHOUT_REDIS = {
    "db upgrade", "tenant list", "tenant show", "tenant create", "tenant template", "customers import",
    "sweep --dry-run", "reminders list",
    "customers show", "customers remove", "customers opt-out", "customers erase",
    "api-keys create", "api-keys list",
}  # fmt: skip
# fault -> (exit status, what the line must say) for a command that needs the broken service.
FAULTS = {
    "redis-down": (4, "start Redis"),
    "wrong-redis-password": (2, "rejected the credentials: check REDIS_PASSWORD"),
    "database-missing": (5, "createdb"),
    "migrations-not-applied": (5, "(migrations not applied): run `tenant-worker db upgrade`"),
}
CELLS = [
    (command, fault)
    for fault in FAULTS
    for command, _ in COMMANDS
    # `db upgrade` is the fix for that fault, and would migrate the database the other cells share.
    if (command, fault) != ("db upgrade", "migrations-not-applied")
    # A command that never checks Redis is shown to work without it by the redis-down column.
    and not (fault == "wrong-redis-password" and command in WITHOUT_REDIS)
]


def expected_status(command: str, fault: str) -> int:
    if fault == "redis-down" and command in WITHOUT_REDIS:
        return 0
    return FAULTS[fault][0]


def secrets() -> list[str]:
    passwords = (REDIS_PASSWORD, WRONG_REDIS_PASSWORD, DATABASE_PASSWORD)
    forms = [form for secret in (*passwords, ACCESS_KEY) for form in (secret, quote(secret, safe=""))]
    return forms + [password[:6] for password in passwords]  # half a password is a leak too


@pytest.fixture(scope="module")
def empty_database() -> Iterator[str]:
    """A database that exists but has no migrations applied."""
    name = f"tw_empty_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def tenant(sessions: sessionmaker[Session]) -> TenantRow:
    with sql_unit_of_work(sessions)() as tx:
        created = create_tenant(
            tx, TenantSpec(SLUG, "Faulty Net", "Europe/Amsterdam", "FaultyNet"), shard_count=DEFAULT_SHARD_COUNT
        )
        expires = dt.date(2031, 1, 1)
        seed_customers(tx, created.id, [customer("kept", expires), customer("forgotten", expires)])
        return created


@pytest.fixture(scope="module")
def fault_envs(worker_env: dict[str, str], redis_url: str, empty_database: str) -> dict[str, dict[str, str]]:
    # Any password connects to the local PostgreSQL (it trusts 127.0.0.1); it is there to be looked for.
    base = {**worker_env, "DATABASE_PASSWORD": DATABASE_PASSWORD, "PGCONNECT_TIMEOUT": "3"}
    database = worker_env["DATABASE_URL"]
    return {
        "redis-down": {**base, "REDIS_URL": build_redis_url("127.0.0.1", free_port(), 0, REDIS_PASSWORD)},
        "wrong-redis-password": {
            **base, "REDIS_URL": build_redis_url("127.0.0.1", urlsplit(redis_url).port or 0, 0, WRONG_REDIS_PASSWORD)
        },
        "database-missing": {**base, "DATABASE_URL": f"{database.rsplit('/', 1)[0]}/tw_missing_{uuid.uuid4().hex[:8]}"},
        "migrations-not-applied": {**base, "DATABASE_URL": empty_database},
    }  # fmt: skip


@pytest.fixture(scope="module")
def outcomes(
    fault_envs: dict[str, dict[str, str]], tenant: TenantRow, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[tuple[str, str], Future[subprocess.CompletedProcess[str]]]]:
    """Every cell of the matrix, started at once on a few threads; tests wait for their own cell."""
    files = tmp_path_factory.mktemp("faults")
    definition = files / "tenant.toml"
    definition.write_text(f'slug = "{unique_slug("onb")}"\nname = "N"\ntimezone = "UTC"\noriginator = "Net"\n')
    csv = files / "customers.csv"
    csv.write_text("external_ref,name,phone,plan,amount,currency,expires_on\nr1,Ann,+31612345678,B,10,EUR,2031-01-01\n")
    arguments = dict(COMMANDS)

    def run(command: str, fault: str) -> subprocess.CompletedProcess[str]:
        words = command.split() + [
            a.format(slug=tenant.slug, new=unique_slug("new"), csv=csv, definition=definition, port=free_port())
            for a in arguments[command]
        ]
        return subprocess.run(
            [str(BIN / "tenant-worker"), *words], env=fault_envs[fault], cwd=files,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        yield {cell: pool.submit(run, *cell) for cell in CELLS}


@pytest.mark.parametrize(("command", "fault"), CELLS, ids=[f"{f}:{c}" for c, f in CELLS])
def test_each_subcommand_under_each_fault_prints_one_line_and_a_documented_status(outcomes, command, fault):
    result = outcomes[command, fault].result()
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    leaked = [secret for secret in secrets() if secret in output]
    assert not leaked, f"{leaked} in {output}"
    status = expected_status(command, fault)
    assert result.returncode == status, output
    if status == 0:
        return
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: ") and FAULTS[fault][1] in result.stderr, result.stderr


def test_a_command_refused_for_a_fault_changed_nothing(outcomes, tenant, sessions):
    for cell in CELLS:
        outcomes[cell].result()
    with sessions() as session:
        row = session.get(TenantRow, tenant.id)
        assert row is not None and (row.queue, row.status, row.scheduled) == (tenant.queue, "active", True)


def test_debug_adds_the_traceback_before_the_same_line(fault_envs):
    for fault, command in (("database-missing", ["tenant", "list"]), ("redis-down", ["worker"])):
        result = subprocess.run(
            [str(BIN / "tenant-worker"), "--debug", *command], env=fault_envs[fault],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == FAULTS[fault][0] and result.stdout == ""
        assert result.stderr.startswith("Traceback (most recent call last):"), result.stderr
        last = result.stderr.splitlines()[-1]
        assert last.startswith("error: ") and FAULTS[fault][1] in last
        assert not [secret for secret in secrets() if secret in result.stderr]


def test_db_upgrade_is_the_fix_for_a_database_without_migrations(worker_env, tmp_path: Path):
    name = f"tw_fresh_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {**worker_env, "DATABASE_URL": PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"}
    try:

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([str(BIN / "tenant-worker"), *args], env=env, capture_output=True, text=True)

        assert cli("tenant", "list").returncode == 5
        upgraded = cli("db", "upgrade")
        assert upgraded.returncode == 0 and "database is up to date" in upgraded.stdout, upgraded.stderr
        listed = cli("tenant", "list", "--json")
        assert listed.returncode == 0 and listed.stdout.strip() == "[]", listed.stderr
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
