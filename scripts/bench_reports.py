"""Benchmark: MessageBird status-report ingestion on a real ``tenant-worker api`` server.

Seeds one tenant with N reminders recorded as sent (MessageBird message ``mb-<id>``), starts the API
server (one uvicorn process) with a signing key, and sends N signed ``GET /v1/dlr/messagebird``
``delivered`` reports at a fixed rate (open loop: request i is due at i / rate, whatever the answers
before it), over keep-alive connections written by hand on asyncio streams so that the load generator
costs little of the CPU the server needs. Tokens are signed before the clock starts, as MessageBird
signs them on its side.

Prints (and :func:`run_reports` returns) the answer time percentiles, measured from when each request
was due (so a server falling behind shows up as latency, not as a slower send rate), the achieved
rate, the non-200 answers, the lag from the last answer until the ledger shows every report, and the
server's CPU time per report (its capacity per core, however busy the machine is).
Targets (issue 12): p99 <= 50 ms at 1,000 reports/s, lag <= 2 s. Asserts nothing.

    .venv/bin/python scripts/bench_reports.py --rate 1000 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from bench_common import BIN, add_tenant, database, free_port, percentile, redis_server
from sqlalchemy import text

from tenant_worker.adapters.db import session_factory
from tenant_worker.constants import DLR_PATH
from tenant_worker_dev.emulators.messagebird_signing import SIGNATURE_HEADER, sign_request

PUBLIC = "https://reminders.bench.example"


def seed(database_url: str, count: int) -> list[int]:
    """A tenant with ``count`` reminders recorded as sent; their ids."""
    sessions = session_factory(database_url)
    tenant_id = add_tenant(sessions, f"bench-dlr-{uuid.uuid4().hex[:8]}", count, count, 30)
    with sessions.begin() as session:
        ids = list(
            session.scalars(
                text("""
                    INSERT INTO reminders (tenant_id, subscription_id, expires_on, window_days, local_date,
                                           status, sent_at)
                    SELECT tenant_id, id, expires_on, 5, CURRENT_DATE, 'sent', now() FROM subscriptions
                     WHERE tenant_id = :t RETURNING id
                """),
                {"t": tenant_id},
            )
        )
        session.execute(
            text("UPDATE reminders SET provider_message_id = 'mb-' || id WHERE tenant_id = :t"), {"t": tenant_id}
        )
        session.execute(text("ANALYZE reminders"))
    return ids


def signed_requests(ids: list[int], signing_key: str, host: str) -> list[bytes]:
    """One raw HTTP/1.1 request per reminder: a ``delivered`` report signed on the public URL."""
    requests = []
    for rid in ids:
        query = urlencode({"id": f"mb-{rid}", "reference": rid, "recipient": "31612345678", "status": "delivered",
                           "statusDatetime": "2026-03-02T09:00:00+00:00"})  # fmt: skip
        token = sign_request(signing_key, f"{PUBLIC}{DLR_PATH}?{query}", validity=600)
        requests.append(
            f"GET {DLR_PATH}?{query} HTTP/1.1\r\nHost: {host}\r\n{SIGNATURE_HEADER}: {token}\r\n\r\n".encode()
        )
    return requests


async def _connection(host: str, port: int, work: asyncio.Queue[tuple[float, bytes] | None], out: list[Any]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    while (item := await work.get()) is not None:
        due, request = item
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")),
            0,
        )
        await reader.readexactly(length)
        out.append((time.perf_counter() - due, int(head.split(b" ", 2)[1])))
    writer.close()


async def _drive(host: str, port: int, requests: list[bytes], rate: float, connections: int) -> tuple[list[Any], float]:
    """Send every request at its due time over ``connections`` keep-alive connections."""
    work: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    start = time.perf_counter() + 0.2
    for i, request in enumerate(requests):
        work.put_nowait((start + i / rate, request))
    for _ in range(connections):
        work.put_nowait(None)
    out: list[Any] = []
    await asyncio.gather(*(_connection(host, port, work, out) for _ in range(connections)))
    return out, time.perf_counter() - start


def _delivered(database_url: str, ids: list[int]) -> int:
    with session_factory(database_url)() as session:
        return int(
            session.scalar(
                text("SELECT count(*) FROM reminders WHERE id = ANY(:ids) AND delivery_status = 'delivered'"),
                {"ids": ids},
            )
            or 0
        )


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux ``/proc``), children not included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_reports(
    rate: float = 1000.0,
    seconds: float = 10.0,
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
    connections: int = 64,
    api_workers: int = 1,
) -> dict[str, float]:
    """Measure report ingestion at ``rate`` reports/s for ``seconds`` (see the module docs)."""
    count = int(rate * seconds)
    signing_key = os.urandom(32).hex()
    with database(database_url) as db_url, redis_server(redis_url) as r_url:
        ids = seed(db_url, count)
        port = free_port()
        env = {**os.environ, "DATABASE_URL": db_url, "REDIS_URL": r_url, "MESSAGEBIRD_SIGNING_KEY": signing_key,
               "PUBLIC_BASE_URL": PUBLIC, "SMS_BACKEND": "console"}  # fmt: skip
        log = Path(tempfile.mkdtemp(prefix="bench-reports-")) / "api.log"
        with log.open("wb") as out:
            server = subprocess.Popen(
                [str(BIN / "tenant-worker"), "api", "--port", str(port), "--log-level", "warning",
                 "--workers", str(api_workers)],
                env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            requests = signed_requests(ids, signing_key, f"127.0.0.1:{port}")
            load = os.getloadavg()[0]
            cpu_before = _cpu_seconds(server.pid)
            results, elapsed = asyncio.run(_drive("127.0.0.1", port, requests, rate, connections))
            cpu = _cpu_seconds(server.pid) - cpu_before
            answered = time.perf_counter()
            while _delivered(db_url, ids) < count and time.perf_counter() - answered < 30:
                time.sleep(0.01)
            lag = time.perf_counter() - answered
            visible = _delivered(db_url, ids)
        finally:
            server.terminate()
            server.wait(10)
    latencies = [latency * 1000 for latency, _ in results]
    return {
        "reports": count,
        "target_rate": rate,
        "achieved_rate": round(len(results) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "max_ms": round(max(latencies), 2),
        "non_200": sum(1 for _, status in results if status != 200),
        "lag_s": round(lag, 3),
        "recorded": visible,
        # What one report costs the server (one process; 0 with --api-workers > 1): the capacity of a
        # core is 1000 / this, whatever else the machine is doing; the load shows how busy it was.
        "server_cpu_ms_per_report": round(cpu * 1000 / count, 3) if api_workers == 1 else 0.0,
        "load_average_1m": round(load, 2),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=1000.0, help="reports per second (default 1000)")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to send (default 10)")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections (default 64)")
    parser.add_argument("--api-workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    parser.add_argument("--database-url", help="a migrated database to use (default: a fresh one)")
    parser.add_argument("--redis-url", help="a Redis to use (default: a fresh redis-server)")
    args = parser.parse_args(argv)
    figures = run_reports(
        args.rate, args.seconds, database_url=args.database_url, redis_url=args.redis_url,
        connections=args.connections, api_workers=args.api_workers,
    )  # fmt: skip
    for name, value in figures.items():
        print(f"{name:>14}: {value}")
    ok = figures["p99_ms"] <= 50 and figures["lag_s"] <= 2 and not figures["non_200"]
    print(f"targets (p99 <= 50 ms, lag <= 2 s, all answered 200): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
