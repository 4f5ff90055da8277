"""The HTTP API as clients see it: a real ``tenant-worker api`` process (uvicorn) on a free port, on
the session's test database and password-protected Redis.

``api_server`` is shared by the session; it yields an :class:`ApiServer` with the ``url``, an
``admin_key``, ``client(key)`` for an ``httpx.Client`` that sends it, and ``make_tenant()`` for a new
tenant with a key of its own. A test that needs other settings (a low rate limit, a signing key)
starts its own with :func:`running_api`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tenant_worker.adapters.api_keys import SqlApiKeyStore
from tenant_worker.adapters.db import session_factory
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.constants import DEFAULT_SHARD_COUNT
from tenant_worker.domain.model import TenantSpec
from tenant_worker.domain.records import Tenant
from tenant_worker.services import api_keys
from tenant_worker.services.tenants import create_tenant
from tests.conftest import ALWAYS_OPEN, BIN, free_port, redis_db_url, unique_slug, wait_until

API_REDIS_DB = 20  # a Redis database no other test uses (the test server has 32)


@dataclass(frozen=True)
class ApiTenant:
    """A tenant made for a test, and an API key of its own."""

    tenant: Tenant
    key: str

    @property
    def slug(self) -> str:
        return self.tenant.slug


@dataclass
class ApiServer:
    """A running API process and what tests need to call it."""

    url: str
    admin_key: str
    database_url: str
    redis_url: str
    log: Path
    env: dict[str, str] = field(repr=False)

    def client(self, key: str | None = None, **headers: str) -> httpx.Client:
        """An HTTP client on the server that sends ``key`` (if any) as its bearer token."""
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def admin(self) -> httpx.Client:
        """A client with the admin key."""
        return self.client(self.admin_key)

    def make_tenant(self, name: str = "") -> ApiTenant:
        """A new tenant (unique slug, no quiet hours) and a key for it, made directly through the
        services so tests of other endpoints do not depend on the admin API."""
        sessions = session_factory(self.database_url)
        uow = sql_unit_of_work(sessions)
        spec = TenantSpec(unique_slug("api"), "Acme Fiber", "Europe/Amsterdam", "AcmeFiber", "en", (5, 3, 1),
                          sending_window=ALWAYS_OPEN)  # fmt: skip
        with uow() as tx:
            tenant = create_tenant(tx, spec, shard_count=DEFAULT_SHARD_COUNT)
        created = api_keys.create_key(uow, SqlApiKeyStore(sessions), tenant.slug, name)
        return ApiTenant(tenant, created.secret)

    def text(self) -> str:
        """What the server logged so far."""
        return self.log.read_text(errors="replace")


def api_env(database_url: str, redis_url: str, **overrides: str) -> dict[str, str]:
    """The API process's environment: the test services, a fresh admin key, generous limits."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("REDIS_", "SENTRY_", "MESSAGEBIRD_", "DATABASE_", "ADMIN_API_KEYS", "API_"))
    }
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_db_url(redis_url, API_REDIS_DB),
        ADMIN_API_KEYS=f"adm-{secrets.token_hex(24)}",
        API_RATE_PER_SECOND="1000",
        API_RATE_BURST="1000",
        SMS_BACKEND="console",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


@contextlib.contextmanager
def running_api(env: dict[str, str], log: Path, *args: str) -> Iterator[ApiServer]:
    """Start ``tenant-worker api`` with ``env`` on a free port; stopped (SIGTERM) afterwards."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "tenant-worker"), "api", "--host", "127.0.0.1", "--port", str(port), *args],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    server = ApiServer(url, env["ADMIN_API_KEYS"].split(",")[0], env["DATABASE_URL"], env["REDIS_URL"], log, env)

    def up() -> bool:
        if process.poll() is not None:
            return True
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, 30, "the API server to answer /healthz")
        if process.poll() is not None:
            pytest.fail(f"the API server exited early:\n{server.text()[-3000:]}")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def api_server(database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """The session's API server (see the module docs)."""
    log = tmp_path_factory.mktemp("api") / "api.log"
    with running_api(api_env(database_url, redis_url), log) as server:
        yield server


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert ``response`` is a problem document with ``status``; its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"], body
    return body
