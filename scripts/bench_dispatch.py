"""Benchmark: SMS/s, sweep-to-send latency of small tenants, duplicates and lost, against a naive
baseline in the same run. Prints numbers; asserts nothing.

Starts (or takes the addresses of) PostgreSQL, a password-protected Redis and the MessageBird
emulator with ``--latency`` and a 429 limit of ``--rate-limit`` per second; loads one large tenant
and ``--small-tenants`` small ones; starts ``--workers`` real ``tenant-worker worker`` processes over
all shards; sweeps every tenant on ``--sweep-threads`` threads (large first), as the control pool
runs the fan-out of ``sweep_all_tenants``, and waits until the ledger has nothing open. Then the
same for the naive baseline (one task per SMS, the SDK as shipped, prefork concurrency 2) on
``--baseline`` reminders. Duplicates = references the emulator accepted more than once; lost =
claimed reminders not accepted exactly once. ``--scenario`` picks one of the issue's targets
(``capped``, ``uncapped``, ``fairness``, ``naive``); explicit flags override its values.

``--http-client both --rounds 3`` compares the MessageBird client's connection pools (the shipped
``http_pool`` and ``Urllib3Pool``, see ``bench_worker.py``): each round runs the sharded workload once
per client, alternating which goes first; it prints the medians of SMS/s and of the workers' CPU per
SMS for each and urllib3's ratio to the pool's.

``--ops none,metrics,events,all`` measures what operations cost, the same way: ``none`` turns the
Prometheus recording off (``bench_worker.py``), ``metrics`` records and serves ``/metrics`` (as shipped,
with METRICS_PORT set), ``events`` sends Celery task events (``-E``, what a running Flower switches on)
without metrics, ``all`` both; each round runs every variant, rotating which goes first.

    .venv/bin/python scripts/bench_dispatch.py --scenario capped --baseline 400
    .venv/bin/python scripts/bench_dispatch.py --scenario uncapped --baseline 0 --ops none,metrics,events,all --rounds 3
    .venv/bin/python scripts/bench_dispatch.py --scenario uncapped --baseline 0 --http-client both --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import redis
from bench_common import BIN, add_tenant, database, emulator, free_port, percentile, redis_server
from sqlalchemy import text

from tenant_worker.adapters.celery_publisher import CeleryReminderQueue
from tenant_worker.adapters.db import session_factory
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.celery_app import create_app
from tenant_worker.config import load_settings
from tenant_worker.services.sweep import sweep_tenant

ACCESS_KEY = "bench-access-key"
SCRIPTS = Path(__file__).resolve().parent


def start_workers(
    commands: list[list[str]], env: dict[str, str], extra_env: list[dict[str, str]] | None = None
) -> list[subprocess.Popen[bytes]]:
    processes = []
    for n, command in enumerate(commands):
        log = open(f"/tmp/bench-worker-{os.getpid()}-{n}.log", "wb")  # noqa: SIM115
        own_env = {**env, **(extra_env[n] if extra_env else {})}
        processes.append(subprocess.Popen(command, env=own_env, stdout=log, stderr=subprocess.STDOUT, cwd=SCRIPTS))
        deadline = time.monotonic() + 60
        while b"ready." not in Path(log.name).read_bytes():
            if time.monotonic() > deadline or processes[-1].poll() is not None:
                sys.exit(f"worker did not start; see {log.name}")
            time.sleep(0.1)
    return processes


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(60)


def emulator_get(url: str, path: str) -> Any:
    with urllib.request.urlopen(url + path, timeout=60) as answer:  # noqa: S310 (our own emulator)
        return json.load(answer)


def emulator_reset(url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(url + "/_emulator/reset", method="POST"), timeout=10)  # noqa: S310


def open_rows(sessions: Any, tenant_ids: list[int]) -> int:
    with sessions() as session:
        return int(
            session.scalar(
                text("SELECT count(*) FROM reminders WHERE tenant_id = ANY(:t) AND status IN ('pending', 'sending')"),
                {"t": tenant_ids},
            )
        )


def measure(label: str, sessions: Any, emulator_url: str, tenant_ids: list[int], small: set[int], t0: float) -> float:
    """Print throughput, small-tenant latency, duplicates and lost for one run; return the SMS/s."""
    with sessions() as session:
        rows = session.execute(
            text("SELECT id, tenant_id, status FROM reminders WHERE tenant_id = ANY(:t)"), {"t": tenant_ids}
        ).all()
    accepted = emulator_get(emulator_url, "/_emulator/accepted")
    refs = Counter(a["reference"] for a in accepted)
    at = {a["reference"]: a["received_at"] for a in accepted}
    ids = {str(r.id) for r in rows}
    duplicates = sum(n - 1 for ref, n in refs.items() if ref in ids and n > 1)
    lost = sum(1 for r in rows if refs.get(str(r.id), 0) == 0)
    sent = sum(1 for ref in refs if ref in ids)
    end = max((at[ref] for ref in refs if ref in ids), default=t0)
    latencies = [at[str(r.id)] - t0 for r in rows if r.tenant_id in small and str(r.id) in at]
    stats = emulator_get(emulator_url, "/_emulator/stats")
    statuses = dict(Counter(r.status for r in rows))
    print(
        f"{label:<10} sent={sent:>6} in {end - t0:6.1f}s = {sent / max(end - t0, 1e-9):7.1f} SMS/s | "
        f"small tenants sweep->send p50={percentile(latencies, 50):6.2f}s p99={percentile(latencies, 99):6.2f}s | "
        f"duplicates={duplicates} lost={lost} | emulator requests={stats['requests']} (429s: "
        f"{stats['requests'] - stats['accepted']}) max in flight={stats['max_in_flight']} | ledger {statuses}",
        flush=True,
    )
    return sent / max(end - t0, 1e-9)


def run(args: argparse.Namespace, redis_url: str, database_url: str, emulator_url: str) -> None:
    env = {
        **os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "SMS_BACKEND": "messagebird",
        "MESSAGEBIRD_ACCESS_KEY": ACCESS_KEY, "MESSAGEBIRD_ENDPOINT": emulator_url,
        "SEND_RATE_PER_SECOND": str(args.rate_limit), "PYTHONPATH": str(SCRIPTS),
    }  # fmt: skip
    settings = load_settings(env)
    sessions = session_factory(database_url)
    if args.large or args.small_tenants:
        clients = ["pool", "urllib3"] if args.http_client == "both" else [args.http_client]
        variants = [(client, ops) for client in clients for ops in args.ops.split(",")]
        runs: dict[str, list[tuple[float, float]]] = {label(*variant): [] for variant in variants}
        for n in range(args.rounds):
            # Rotate which variant goes first, so a drift of the machine or the database weighs on all.
            for client, ops in variants[n % len(variants) :] + variants[: n % len(variants)]:
                result = run_sharded(args, env, settings, sessions, emulator_url, client, f"r{n}", ops)
                runs[label(client, ops)].append(result)
        summarize(runs)
    if args.baseline > 0:
        run_naive(args, env, settings, sessions, emulator_url)


def label(client: str, ops: str) -> str:
    """A variant's name in the output: the client, and the operations variant unless it is the default."""
    return client if ops == "metrics" else f"{client}+{ops}"


OPS = ("none", "metrics", "events", "all")


def run_sharded(
    args: argparse.Namespace,
    env: dict[str, str],
    settings: Any,
    sessions: Any,
    emulator_url: str,
    client: str,
    tag: str,
    ops: str = "metrics",
) -> tuple[float, float]:
    """tenant-worker itself: ``--workers`` worker processes over every shard, on HTTP client ``client``;
    ``tag`` keeps each round's tenants apart. Returns the SMS/s and the workers' CPU time per SMS (us):
    on a shared, busy machine the CPU per SMS varies far less from run to run than the rate."""
    queue = CeleryReminderQueue(create_app(settings))
    large = add_tenant(sessions, f"large-{tag}-{client}-{ops}", args.large, args.large, 30)
    smalls = [
        add_tenant(sessions, f"small-{tag}-{client}-{ops}-{n:04d}", args.small_due, args.small_due, 30)
        for n in range(args.small_tenants)
    ]
    with sessions() as session:
        slugs = dict(session.execute(text("SELECT id, slug FROM tenants")).all())
    command = [sys.executable, str(SCRIPTS / "bench_worker.py"), client, "worker", "--shards",
               f"0-{settings.shard_count - 1}", "--loglevel", "INFO", "--without-mingle", "--without-gossip",
               "--without-heartbeat"]  # fmt: skip
    if ops in ("events", "all"):
        command.append("-E")
    metrics = ops in ("metrics", "all")
    extra = [{"BENCH_METRICS": "on", "METRICS_PORT": str(free_port())} if metrics else {"BENCH_METRICS": "off"}
             for _ in range(args.workers)]  # fmt: skip
    workers = start_workers([command] * args.workers, env, extra)
    emulator_reset(emulator_url)
    cpu0 = sum(cpu_seconds(worker.pid) for worker in workers)
    redis0 = redis_traffic(env["REDIS_URL"])
    t0 = time.time()
    # The production fan-out: sweep_all_tenants publishes one sweep task per tenant and the control
    # pool runs them concurrently; here --sweep-threads threads of this process do the same sweeps.
    with ThreadPoolExecutor(args.sweep_threads) as pool:
        list(
            pool.map(
                lambda tenant_id: sweep_tenant(sql_unit_of_work(sessions), slugs[tenant_id], queue, settings),
                [large, *smalls],
            )
        )
    sweep_seconds = time.time() - t0
    tenant_ids = [large, *smalls]
    while open_rows(sessions, tenant_ids):
        time.sleep(0.5)
    cpu = sum(cpu_seconds(worker.pid) for worker in workers) - cpu0
    commands, received = (after - before for after, before in zip(redis_traffic(env["REDIS_URL"]), redis0, strict=True))
    stop(workers)
    print(
        f"sweep of {len(tenant_ids)} tenants ({args.sweep_threads} threads, large tenant first) took "
        f"{sweep_seconds:.2f}s",
        flush=True,
    )
    rate = measure(label(client, ops), sessions, emulator_url, tenant_ids, set(smalls), t0)
    sms = args.large + args.small_tenants * args.small_due
    print(f"{label(client, ops):<10} workers' CPU {cpu:.1f}s = {cpu / sms * 1e6:.0f} us per SMS", flush=True)
    print(f"{label(client, ops):<10} Redis: {commands / sms:.1f} commands and {received / sms:.0f} bytes in per SMS "
          "(the whole run: sweeps, tasks, rate limits, events)", flush=True)  # fmt: skip
    return rate, cpu / sms * 1e6


def redis_traffic(url: str) -> tuple[int, int]:
    """Commands Redis processed and bytes it received so far (``INFO stats``)."""
    stats = redis.Redis.from_url(url).info("stats")
    return int(stats["total_commands_processed"]), int(stats["total_net_input_bytes"])


def summarize(runs: dict[str, list[tuple[float, float]]]) -> None:
    """Median SMS/s and CPU per SMS of each client over the rounds, and urllib3's relative to the pool's."""
    medians = {}
    for client, values in runs.items():
        rates, cpus = [v[0] for v in values], [v[1] for v in values]
        medians[client] = statistics.median(rates), statistics.median(cpus)
        print(f"{client:<8} median {medians[client][0]:7.1f} SMS/s, {medians[client][1]:4.0f} us CPU/SMS over "
              f"{len(values)} rounds: {', '.join(f'{r:.1f}' for r in rates)} SMS/s; "
              f"{', '.join(f'{c:.0f}' for c in cpus)} us", flush=True)  # fmt: skip
    if "pool" in medians and "urllib3" in medians:
        (rate_pool, cpu_pool), (rate_urllib3, cpu_urllib3) = medians["pool"], medians["urllib3"]
        ratios = f"SMS/s {rate_urllib3 / rate_pool:.3f}, CPU per SMS {cpu_urllib3 / cpu_pool:.3f}"
        print(f"urllib3/pool: {ratios}", flush=True)
    for name, (rate, cpu) in medians.items():
        base = medians.get(name.split("+")[0] + "+none")
        if base and not name.endswith("+none"):
            print(f"{name}/none: SMS/s {rate / base[0]:.3f}, CPU per SMS {cpu / base[1]:.3f}", flush=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (Linux ``/proc/<pid>/stat``, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_naive(args: argparse.Namespace, env: dict[str, str], settings: Any, sessions: Any, emulator_url: str) -> None:
    """The naive baseline on ``--baseline`` reminders (half one tenant, the rest 10 per tenant)."""
    base_large = add_tenant(sessions, "base-large", args.baseline // 2, args.baseline // 2, 30)
    base_smalls = [add_tenant(sessions, f"base-small-{n:03d}", 10, 10, 30) for n in range(args.baseline // 20)]
    naive_queue = NaiveQueue(create_app(settings))
    naive = settings.__class__(**{**settings.__dict__, "max_batches_per_tenant": 10**9})
    celery = [str(BIN / "celery"), "-A", "bench_naive", "worker", "-P", "prefork", "-c", "2", "-Q", "bench.naive",
              "--loglevel", "INFO", "--without-mingle", "--without-gossip", "--without-heartbeat"]  # fmt: skip
    workers = start_workers([celery], env)
    emulator_reset(emulator_url)
    with sessions() as session:
        slugs = dict(session.execute(text("SELECT id, slug FROM tenants")).all())
    t0 = time.time()
    for tenant_id in [base_large, *base_smalls]:
        sweep_tenant(sql_unit_of_work(sessions), slugs[tenant_id], naive_queue, naive)
    tenant_ids = [base_large, *base_smalls]
    deadline = time.monotonic() + args.baseline_timeout
    while open_rows(sessions, tenant_ids) and time.monotonic() < deadline:
        time.sleep(0.5)
    stop(workers)
    measure("naive", sessions, emulator_url, tenant_ids, set(base_smalls), t0)


class NaiveQueue:
    """Publishes one baseline task per reminder."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def enqueue(
        self, tenant_id: int, reminder_ids: list[int], countdown: float = 0.0, queue: str | None = None
    ) -> None:
        for reminder_id in reminder_ids:
            self.app.send_task("bench.naive_send", args=[tenant_id, reminder_id], queue="bench.naive")


# The targets, selectable with --scenario (explicit flags override a scenario's values).
SCENARIOS: dict[str, dict[str, Any]] = {
    # 100 ms latency, 500/s provider cap: >= 450 SMS/s over 20,000 SMS, 0 duplicates, 0 lost.
    "capped": {"latency": 0.1, "rate_limit": 500, "large": 10000, "small_tenants": 1000, "small_due": 10},
    # 0 ms latency, no cap: >= 1,500 SMS/s.
    "uncapped": {"latency": 0.0, "rate_limit": 0, "large": 10000, "small_tenants": 1000, "small_due": 10},
    # One tenant with 50,000 due and 100 tenants with 10 due: small tenants' p99 <= 5 s.
    "fairness": {"latency": 0.1, "rate_limit": 500, "large": 50000, "small_tenants": 100, "small_due": 10},
    # Only the naive baseline (one task per SMS, the SDK as shipped, prefork concurrency 2).
    "naive": {"latency": 0.1, "rate_limit": 500, "large": 0, "small_tenants": 0, "small_due": 10},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), help="one of the issue's targets")
    parser.add_argument("--latency", type=float, help="emulated MessageBird latency (s); default 0.1")
    parser.add_argument("--rate-limit", type=float, help="provider limit per second (0 = none); "
                        "also the workers' SEND_RATE_PER_SECOND; default 500")  # fmt: skip
    parser.add_argument("--large", type=int, help="due reminders of the large tenant; default 10000")
    parser.add_argument("--small-tenants", type=int, help="default 1000")
    parser.add_argument("--small-due", type=int, help="due reminders per small tenant; default 10")
    parser.add_argument("--workers", type=int, default=2, help="tenant-worker worker processes")
    parser.add_argument("--sweep-threads", type=int, default=4, help="concurrent tenant sweeps (the control "
                        "pool's WORKER_CONCURRENCY)")  # fmt: skip
    parser.add_argument("--http-client", choices=["pool", "urllib3", "both"], default="pool",
                        help="the MessageBird client's connection pool (both: compare them)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=1, help="runs of the sharded workload (per variant)")
    parser.add_argument("--ops", default="metrics", help=f"comma-separated, of {', '.join(OPS)}: "
                        "metrics and task events on or off (see above); default metrics, as shipped")  # fmt: skip
    parser.add_argument("--baseline", type=int, default=400, help="reminders for the naive baseline (0 = skip)")
    parser.add_argument("--baseline-timeout", type=float, default=120)
    parser.add_argument("--redis-url")
    parser.add_argument("--database-url")
    parser.add_argument("--emulator-url")
    args = parser.parse_args()
    chosen = {**SCENARIOS["capped"], **SCENARIOS.get(args.scenario or "capped", {})}
    for name, value in chosen.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if not set(args.ops.split(",")) <= set(OPS):
        parser.error(f"--ops takes a comma-separated list of {', '.join(OPS)}")
    print(f"scenario {args.scenario or 'custom'}: {vars(args)}", flush=True)
    with (
        redis_server(args.redis_url) as redis_url,
        database(args.database_url) as database_url,
        emulator(args.emulator_url, args.latency, args.rate_limit, ACCESS_KEY) as emulator_url,
    ):
        run(args, redis_url, database_url, emulator_url)


if __name__ == "__main__":
    main()
