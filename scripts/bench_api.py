"""Benchmark: the HTTP API on a real server (``tenant-worker api``, uvicorn) on a fresh database.

Parts (``--part``, default all):

* ``upsert``: bulk upserts of 1,000 subscriptions per request (``POST /v1/tenants/{slug}/customers``)
  from ``--clients`` concurrent clients, each on a tenant of its own preloaded with ``--existing``
  customers (bulk ``INSERT ... SELECT generate_series``). Each request renews half its rows (customers
  the tenant has) and creates the other half. Prints p50/p99 latency per request and the rows per
  second sustained over the run; targets: p99 <= 500 ms, >= 10,000 rows/s. Also the server
  process's CPU time per request (its capacity per core, however busy the machine is; PostgreSQL's
  share is not in it).

* ``reports``: MessageBird status-report ingestion at ``--rate`` reports/s for ``--seconds``
  (``scripts/bench_reports.py``'s ``run_reports``, on a server and database of its own): p50/p99
  answer time and the lag until the ledger shows every report; targets: p99 <= 50 ms, lag <= 2 s.

Each part is a function ``part(args) -> dict`` registered in :data:`PARTS` that starts what it needs
(a fresh database, Redis, the server: :func:`api_process`); add a part by registering its function.
Prints numbers; asserts nothing.

    .venv/bin/python scripts/bench_api.py --part upsert --clients 4 --requests 50
    .venv/bin/python scripts/bench_api.py --part reports --rate 1000 --seconds 10
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from bench_common import BIN, bulk_load, database, free_port, percentile, redis_server

from tenant_worker.adapters.api_keys import SqlApiKeyStore
from tenant_worker.adapters.db import session_factory
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.constants import DEFAULT_SHARD_COUNT
from tenant_worker.domain.localtime import SendingWindow
from tenant_worker.domain.model import TenantSpec
from tenant_worker.services import api_keys
from tenant_worker.services.tenants import create_tenant

ROWS_PER_REQUEST = 1000
ALWAYS_OPEN = SendingWindow(dt.time(0), dt.time(0))


@dataclass
class ApiProcess:
    """A running ``tenant-worker api`` and what a part needs to call it and reach its database."""

    url: str
    admin_key: str
    database_url: str
    redis_url: str
    pid: int
    env: dict[str, str] = field(repr=False)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of the server: its process and its uvicorn workers (Linux ``/proc``)."""
        pids = [self.pid, *map(int, Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split())]
        total = 0.0
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def new_tenant(self, slug: str) -> tuple[int, str]:
        """A tenant (no quiet hours) and an API key of its own: (tenant id, key)."""
        sessions = session_factory(self.database_url)
        uow = sql_unit_of_work(sessions)
        with uow() as tx:
            spec = TenantSpec(slug, slug, "UTC", "BenchNet", sending_window=ALWAYS_OPEN)
            tenant_id = create_tenant(tx, spec, shard_count=DEFAULT_SHARD_COUNT).id
        return tenant_id, api_keys.create_key(uow, SqlApiKeyStore(sessions), slug, "bench").secret


@contextlib.contextmanager
def api_process(database_url: str, redis_url: str, workers: int, log: Path, **env: str) -> Iterator[ApiProcess]:
    """``tenant-worker api`` on a free port (``workers`` uvicorn processes), stopped afterwards."""
    port, admin_key = free_port(), f"adm-{secrets.token_hex(24)}"
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("API_", "ADMIN_API_KEYS"))}
    environment.update(DATABASE_URL=database_url, REDIS_URL=redis_url, ADMIN_API_KEYS=admin_key,
                       API_RATE_PER_SECOND="100000", API_RATE_BURST="100000", SMS_BACKEND="console", **env)  # fmt: skip
    args = [str(BIN / "tenant-worker"), "api", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--log-level", "warning"]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(args, env=environment, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if process.poll() is not None:
                raise SystemExit(f"the API server exited:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        yield ApiProcess(url, admin_key, database_url, redis_url, process.pid, environment)
    finally:
        process.terminate()
        process.wait(15)


def upsert_rows(tenant: int, request: int, existing: int, expires_on: dt.date) -> list[dict[str, Any]]:
    """1,000 rows for the ``tenant``-th tenant: half renew customers the preload made (``c<n>``, the
    same details as ``bench_common.bulk_load`` gave them, a new ``expires_on``), half create new ones."""
    half = ROWS_PER_REQUEST // 2
    rows = []
    for i in range(ROWS_PER_REQUEST):
        n = 1 + (request * half + i) % existing if i < half and existing else None
        ref = f"c{n}" if n is not None else f"api-{request}-{i}"
        number = tenant * existing + n - 1 if n is not None else 5_000_000 + request * ROWS_PER_REQUEST + i
        phone = f"+3161{number % 10_000_000:07d}"
        rows.append({"external_ref": ref, "name": f"Customer {n or i}", "phone": phone, "plan": "Fiber",
                     "amount": "29.95", "currency": "EUR", "expires_on": expires_on.isoformat()})  # fmt: skip
    return rows


def part_upsert(args: argparse.Namespace) -> dict[str, float]:
    """Concurrent 1,000-row upserts (see the module docs) on a fresh server; the measured numbers."""
    log = Path(tempfile.mkdtemp(prefix="bench-api-")) / "api.log"  # the server's output, shown if it fails
    with (
        database(args.database_url) as url,
        redis_server(args.redis_url) as redis_url,
        api_process(url, redis_url, args.workers, log) as api,
    ):
        return measure_upserts(api, args)


def measure_upserts(api: ApiProcess, args: argparse.Namespace) -> dict[str, float]:
    """Concurrent 1,000-row upserts against ``api``; the measured numbers."""
    tenants = [api.new_tenant(f"bench-api-{i}") for i in range(args.clients)]
    if args.existing:
        print(f"upsert: preloading {args.clients} tenants with {args.existing:,} customers each ...", flush=True)
        bulk_load(api.database_url, [tenant_id for tenant_id, _ in tenants], args.existing, 0, 300)
    expires_on = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=200)

    def client_run(client_index: int) -> list[float]:
        _, key = tenants[client_index]
        slug = f"bench-api-{client_index}"
        latencies = []
        with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
            for request in range(args.warmup + args.requests):
                body = {"rows": upsert_rows(client_index, request, args.existing, expires_on)}
                started = time.perf_counter()
                answer = client.post(f"/v1/tenants/{slug}/customers", json=body)
                elapsed = time.perf_counter() - started
                if answer.status_code != 200 or answer.json()["rejected"]:
                    raise SystemExit(f"upsert failed: {answer.status_code} {answer.text[:500]}")
                if request >= args.warmup:
                    latencies.append(elapsed)
        return latencies

    # Warm-up requests run too, but only the measured ones count; the wall clock covers all requests.
    cpu_before = api.cpu_seconds()
    started = time.perf_counter()
    with ThreadPoolExecutor(args.clients) as pool:
        per_client = list(pool.map(client_run, range(args.clients)))
    wall = time.perf_counter() - started
    requests = args.clients * (args.warmup + args.requests)
    server_cpu_ms = (api.cpu_seconds() - cpu_before) / requests * 1000
    latencies = [value for values in per_client for value in values]
    total_rows = ROWS_PER_REQUEST * args.clients * (args.warmup + args.requests)
    result = {
        "requests": float(len(latencies)),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": max(latencies) * 1000,
        "rows_per_s": total_rows / wall,
        "server_cpu_ms": server_cpu_ms,
    }
    print(
        f"upsert: {args.clients} clients x {args.requests} requests of {ROWS_PER_REQUEST:,} rows "
        f"(tenants of {args.existing:,} customers, {args.workers} server processes): "
        f"p50 {result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms (target <= 500), max {result['max_ms']:.0f} ms; "
        f"{result['rows_per_s']:,.0f} rows/s sustained (target >= 10,000); the server's own CPU "
        f"{server_cpu_ms:.0f} ms a request ({ROWS_PER_REQUEST / server_cpu_ms * 1000:,.0f} rows/s per core, "
        "PostgreSQL not included)",
        flush=True,
    )
    return result


def part_reports(args: argparse.Namespace) -> dict[str, float]:
    """Status-report ingestion (``bench_reports.run_reports``); its figures, printed."""
    from bench_reports import run_reports

    figures = run_reports(
        args.rate, args.seconds, database_url=args.database_url, redis_url=args.redis_url,
        connections=args.connections, api_workers=1,
    )  # fmt: skip
    print("reports: " + ", ".join(f"{name} {value}" for name, value in figures.items()), flush=True)
    return {name: float(value) for name, value in figures.items()}


# Every part, by the name --part takes.
PARTS: dict[str, Callable[[argparse.Namespace], dict[str, float]]] = {"upsert": part_upsert, "reports": part_reports}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=[*PARTS, "all"], default="all")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients, each on its own tenant")
    parser.add_argument("--requests", type=int, default=30, help="measured requests per client")
    parser.add_argument("--warmup", type=int, default=3, help="requests per client before measuring")
    parser.add_argument("--existing", type=int, default=200_000, help="customers preloaded per tenant")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes (upsert)")
    parser.add_argument("--rate", type=float, default=1000.0, help="status reports per second (reports)")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to send reports (reports)")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections (reports)")
    parser.add_argument("--redis-url", help="use this Redis instead of starting one")
    parser.add_argument("--database-url", help="use this (migrated, empty) database instead of a fresh one")
    args = parser.parse_args()
    for name in list(PARTS) if args.part == "all" else [args.part]:
        PARTS[name](args)


if __name__ == "__main__":
    sys.exit(main())
