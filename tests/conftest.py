"""Fixtures that start real services: a password-protected redis-server, a fresh PostgreSQL database,
the MessageBird emulator, a Sentry recorder and a real ``celery worker`` process.

A test that needs a service it cannot reach fails with a clear message; it never silently passes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from sqlalchemy.orm import Session, sessionmaker

from tenant_worker import constants
from tenant_worker.adapters.celery_publisher import CeleryReminderQueue
from tenant_worker.adapters.db import session_factory, upgrade_database
from tenant_worker.adapters.orm import TenantRow
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.celery_app import create_app
from tenant_worker.config import Settings, build_redis_url, load_settings
from tenant_worker.constants import DEFAULT_SHARD_COUNT
from tenant_worker.domain.localtime import SendingWindow
from tenant_worker.domain.model import OutboundSms, OutcomeKind, SendOutcome, TenantSpec
from tenant_worker.domain.records import CustomerRecord, Tenant
from tenant_worker.domain.storage import UnitOfWorkFactory
from tenant_worker.services.tenants import create_tenant
from tenant_worker_dev.emulators.messagebird import MessageBirdEmulator
from tenant_worker_dev.emulators.sentry import SentryRecorder
from tests.seeding import seed_customers

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# Contains every character that breaks naive URL building.
REDIS_PASSWORD = "s3cr#t@:/%pass word"
ACCESS_KEY = "test-access-key-5f2a"
BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy, or fail saying what did not happen."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# Celery logs "Task <name>[<id>] received" when a worker takes a message (a retry's countdown included)
# and "Task <name>[<id>] succeeded in ..." (or raised, retry, failed, ignored, rejected) when it ends.
_TASK_LINE = re.compile(r"Task [\w.]+\[([\w-]+)\] (\w+)")


def unfinished_tasks(log: Path) -> set[str]:
    """Ids of the tasks a worker's log shows as received and not yet ended."""
    received: set[str] = set()
    ended: set[str] = set()
    for task_id, word in _TASK_LINE.findall(log.read_text(errors="replace")):
        (received if word == "received" else ended).add(task_id)
    return received - ended


def wait_for_idle_worker(log: Path, what: str, timeout: float = 30) -> None:
    """Wait until the worker writing ``log`` has ended every task it received: whatever those tasks
    send, record, report or publish has happened by then."""
    wait_until(lambda: not unfinished_tasks(log), timeout, f"the worker to end every task it received ({what})")


@contextlib.contextmanager
def own_database(prefix: str = "tw_test", *, migrate: bool = True) -> Iterator[str]:
    """A fresh, migrated database on the local PostgreSQL, dropped afterwards. Besides the session's,
    tests of what acts on every tenant (the recovery tick) get one, so they never touch another
    test's rows and count exactly what they made. ``migrate=False``: left empty (a migration's test
    upgrades it step by step)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required at {PG_ADMIN_URL} (run scripts/ensure_services.sh): {exc}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        if migrate:
            upgrade_database(url)
        yield url
    finally:
        from tenant_worker.adapters.db import get_engine

        get_engine(url).dispose()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh, migrated database on the local PostgreSQL, dropped afterwards."""
    with own_database() as url:
        yield url


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of our own with ``--requirepass``, on a free port."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is required on PATH (apt-get install redis-server)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", REDIS_PASSWORD, "--databases", "32",
         "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = build_redis_url("127.0.0.1", port, 0, REDIS_PASSWORD)
    client = redis.Redis.from_url(url)

    def ping() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    wait_until(ping, 10, "redis-server to accept connections")
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="session")
def emulator() -> Iterator[MessageBirdEmulator]:
    """The MessageBird emulator the worker talks to."""
    with MessageBirdEmulator(access_key=ACCESS_KEY) as server:
        yield server


@pytest.fixture(scope="session")
def sentry_recorder() -> Iterator[SentryRecorder]:
    """Records the envelopes the worker's sentry-sdk sends."""
    with SentryRecorder() as recorder:
        yield recorder


@pytest.fixture(scope="session")
def worker_env(
    database_url: str, redis_url: str, emulator: MessageBirdEmulator, sentry_recorder: SentryRecorder
) -> dict[str, str]:
    """Environment of the worker process: real services, fast retries, a short read timeout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "SENTRY_", "MESSAGEBIRD_"))}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SMS_BACKEND="messagebird",
        MESSAGEBIRD_ACCESS_KEY=ACCESS_KEY,
        MESSAGEBIRD_ENDPOINT=emulator.url,
        MESSAGEBIRD_READ_TIMEOUT="1.0",
        SENTRY_DSN=sentry_recorder.dsn,
        SEND_RETRY_BASE_SECONDS="0.2",
        SEND_RETRY_CAP_SECONDS="1",
        SEND_MAX_ATTEMPTS="4",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture(scope="session")
def settings(worker_env: dict[str, str]) -> Settings:
    """The same settings the worker uses, for in-process sweeps."""
    return load_settings(worker_env)


@pytest.fixture(scope="session")
def sessions(database_url: str) -> sessionmaker[Session]:
    """Sessions on the test database."""
    return session_factory(database_url)


@pytest.fixture(scope="session")
def uow(sessions: sessionmaker[Session]) -> UnitOfWorkFactory:
    """Units of work on the test database (what the services take)."""
    return sql_unit_of_work(sessions)


@pytest.fixture(scope="session")
def queue(settings: Settings) -> CeleryReminderQueue:
    """Publishes send tasks to the test Redis."""
    return CeleryReminderQueue(create_app(settings))


@pytest.fixture(scope="session")
def celery_worker(worker_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real ``tenant-worker worker`` process; yields the path of its log."""
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "tenant-worker"), "worker", "--loglevel", "INFO", "--concurrency", "2",
             "--hostname", f"test-{uuid.uuid4().hex[:6]}@%h", "--without-mingle", "--without-gossip"],
            env=worker_env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_until(
            lambda: "ready." in log.read_text(errors="replace") or process.poll() is not None, 60, "worker ready"
        )
        if process.poll() is not None:
            pytest.fail(f"celery worker exited early:\n{log.read_text(errors='replace')[-3000:]}")
        yield log
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


ALWAYS_OPEN = SendingWindow(dt.time(0), dt.time(0))
_phone_counter = itertools.count(random.randrange(10**5, 9 * 10**6))


def new_phone() -> str:
    """A valid Dutch mobile number no other test uses."""
    return f"+3161{next(_phone_counter):07d}"


def unique_slug(prefix: str = "t") -> str:
    """A tenant slug no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def make_tenant(uow: UnitOfWorkFactory) -> Callable[..., Tenant]:
    """Create a tenant with a unique slug (each test makes its own)."""

    def make(
        timezone: str = "Europe/Amsterdam", windows: tuple[int, ...] = (5, 3, 1), template: str | None = None
    ) -> Tenant:
        # No quiet hours: these tenants are texted by a real worker at whatever time the suite runs.
        # Quiet hours have their own tests, with a clock they control.
        spec = TenantSpec(unique_slug(), "Acme Fiber", timezone, "AcmeFiber", "en", windows, sending_window=ALWAYS_OPEN)
        with uow() as tx:
            return create_tenant(tx, spec, template, shard_count=DEFAULT_SHARD_COUNT)

    return make


def customer(
    ref: str, expires_on: dt.date, phone: str | None = None, name: str | None = None, **extra: Any
) -> CustomerRecord:
    """A customer record with sensible defaults."""
    record = CustomerRecord(
        ref, name or f"Customer {ref}", phone or new_phone(), "Fiber 100", Decimal("29.95"), "EUR", expires_on
    )
    return replace(record, **extra)


def add_customers(sessions: sessionmaker[Session], tenant: Tenant, records: list[CustomerRecord]) -> None:
    """Import customers and subscriptions for a tenant (``tests.seeding``)."""
    with sql_unit_of_work(sessions)() as tx:
        seed_customers(tx, tenant.id, records)


class RecordingGateway:
    """Remembers what would have been texted."""

    def __init__(self) -> None:
        self.sent: list[OutboundSms] = []

    def send(self, sms: OutboundSms) -> SendOutcome:
        self.sent.append(sms)
        return SendOutcome(OutcomeKind.SENT, provider_id=f"mb-{sms.reference}")

    def close(self) -> None:
        pass


class RecordingQueue:
    """A reminder queue that remembers what was enqueued (for ledger tests that need no worker)."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, list[int]]] = []

    def enqueue(
        self, tenant_id: int, reminder_ids: list[int], countdown: float = 0.0, queue: str | None = None
    ) -> None:
        """Record the batch."""
        self.batches.append((tenant_id, list(reminder_ids)))

    @property
    def ids(self) -> list[int]:
        """Every reminder id enqueued so far."""
        return [i for _, batch in self.batches for i in batch]


@pytest.fixture(scope="session")
def settings_fixture(settings: Settings) -> Settings:
    """Alias of :func:`settings` for tests that also use hypothesis' ``settings`` decorator."""
    return settings


def redis_db_url(redis_url: str, db: int) -> str:
    """The same password-protected Redis, another logical database: a test's own queues and keys,
    out of reach of the session worker."""
    return redis_url.rsplit("/", 1)[0] + f"/{db}"


class WorkerProcess:
    """A running ``tenant-worker worker`` started by a test, with its log and settings."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path, settings: Settings) -> None:
        self.process, self.log, self.settings = process, log, settings

    def text(self) -> str:
        """The worker's output so far."""
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        """Warm shutdown, then kill if it hangs."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture
def start_worker(worker_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start extra real workers with their own arguments and environment; all stopped afterwards."""
    started: list[WorkerProcess] = []

    def start(*args: str, **env_overrides: str) -> WorkerProcess:
        env = {**worker_env, **env_overrides}
        log = tmp_path / f"worker-{len(started)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(BIN / "tenant-worker"), "worker", *args, "--loglevel", "INFO",
                 "--hostname", f"test-{uuid.uuid4().hex[:6]}@%h", "--without-mingle", "--without-gossip"],
                env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        worker = WorkerProcess(process, log, load_settings(env))
        started.append(worker)
        wait_until(lambda: "ready." in worker.text() or process.poll() is not None, 60, "worker ready")
        if process.poll() is not None:
            pytest.fail(f"worker exited early:\n{worker.text()[-3000:]}")
        return worker

    yield start
    for worker in started:
        worker.stop()


def put_on_queue(sessions: sessionmaker[Session], tenant: Tenant, queue_name: str) -> Tenant:
    """Assign a tenant's queue directly (before any process cached its route); the tenant as it is now."""
    from sqlalchemy import update

    with sessions.begin() as session:
        session.execute(update(TenantRow).where(TenantRow.id == tenant.id).values(queue=queue_name))
    return replace(tenant, queue=queue_name)


BEAT_LOCK_KEY = constants.REDBEAT_KEY_PREFIX + ":lock"


class Beat:
    """A running ``tenant-worker beat`` and its log."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process, self.log = process, log

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def holds(self, server: Any) -> bool:
        """The beat lock in ``server.client``'s Redis holds this process's token (``host:pid:random``)."""
        try:
            token = server.client.get(BEAT_LOCK_KEY)
        except redis.RedisError:
            return False
        return token is not None and token.split(":")[1] == str(self.process.pid)


@pytest.fixture
def start_beat(worker_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Beat]]:
    """Start real ``tenant-worker beat`` processes with extra environment; all killed afterwards."""
    started: list[Beat] = []

    def start(**env: str) -> Beat:
        log = tmp_path / f"beat-{len(started)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(BIN / "tenant-worker"), "beat", "--loglevel", "INFO"],
                env={**worker_env, **env}, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
            )  # fmt: skip
        beat = Beat(process, log)
        started.append(beat)
        return beat

    yield start
    for beat in started:
        if beat.process.poll() is None:
            beat.process.kill()
            beat.process.wait(10)
