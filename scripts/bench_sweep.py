"""Benchmark: how long a sweep of every tenant takes as the number of subscriptions grows.

Loads ``--tenants`` tenants holding the given number of subscriptions in total, ``--due`` of them
(8,000 by default, at every size) expiring within the 5-day window (bulk ``INSERT ... SELECT
generate_series`` with secondary indexes and foreign keys dropped during the load and rebuilt after),
then times one sweep of all tenants (claim into the ledger and publish each tenant's first batches to
a real Redis), for each size given, twice:

* ``sequential``: one tenant after another in this process, one connection;
* ``fan-out``: ``--concurrency`` threads each sweeping tenants, which is what production does
  (``sweep_all_tenants`` publishes one ``sweep_tenant`` task per tenant to the control pool, whose
  worker runs ``WORKER_CONCURRENCY`` of them at once).

Between the two the ledger is emptied and the broker flushed, so both claim the same rows. The claim
reads only subscriptions inside the window through the (tenant_id, expires_on) index, so its time
should follow the number due, not the table size. Prints numbers; asserts nothing.

    .venv/bin/python scripts/bench_sweep.py --sizes 1000000,10000000
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

import redis
from bench_common import bulk_load, database, redis_server
from sqlalchemy import text

from tenant_worker.adapters.celery_publisher import CeleryReminderQueue
from tenant_worker.adapters.db import session_factory
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.celery_app import create_app
from tenant_worker.config import Settings
from tenant_worker.constants import DEFAULT_SHARD_COUNT
from tenant_worker.domain.localtime import SendingWindow
from tenant_worker.domain.model import TenantSpec
from tenant_worker.services.sweep import SweepReport, sweep_tenant
from tenant_worker.services.tenants import create_tenant


def load(url: str, size: int, tenants: int, due_total: int) -> list[str]:
    """Create the tenants (no quiet hours, so the run's hour does not matter) and their subscriptions."""
    sessions = session_factory(url)
    always = SendingWindow()
    always = SendingWindow(always.start, always.start)
    slugs = [f"bench-{n:04d}" for n in range(tenants)]
    with sql_unit_of_work(sessions)() as tx:
        ids = [
            create_tenant(
                tx, TenantSpec(s, s, "UTC", "BenchNet", sending_window=always), shard_count=DEFAULT_SHARD_COUNT
            ).id
            for s in slugs
        ]
    # The same number due at every size: only the table grows, so the time should not.
    bulk_load(url, ids, size // tenants, due_total // tenants, 365)
    return slugs


def sweep_all(url: str, redis_url: str, slugs: list[str], concurrency: int) -> tuple[float, list[SweepReport]]:
    """Empty the ledger and the broker, then sweep every tenant; returns (seconds, reports)."""
    sessions = session_factory(url)
    with sessions.begin() as session:
        session.execute(text("TRUNCATE reminders"))
    redis.Redis.from_url(redis_url).flushdb()
    settings = Settings(redis_url=redis_url, database_url=url)
    queue = CeleryReminderQueue(create_app(settings))
    # Warm the pools (database, broker, route cache) as a running control worker would have them.
    with sessions() as session:
        session.execute(text("SELECT 1"))
    started = time.perf_counter()
    if concurrency <= 1:
        reports = [sweep_tenant(sql_unit_of_work(sessions), slug, queue, settings) for slug in slugs]
    else:
        with ThreadPoolExecutor(concurrency) as pool:
            reports = list(
                pool.map(lambda slug: sweep_tenant(sql_unit_of_work(sessions), slug, queue, settings), slugs)
            )
    return time.perf_counter() - started, reports


def run(size: int, tenants: int, due_total: int, concurrency: int, redis_url: str, database_url: str | None) -> None:
    with database(database_url) as url:
        started = time.perf_counter()
        slugs = load(url, size, tenants, due_total)
        loaded = time.perf_counter() - started
        for label, threads in (("sequential", 1), (f"fan-out x{concurrency}", concurrency)):
            elapsed, reports = sweep_all(url, redis_url, slugs, threads)
            claimed = sum(r.claimed for r in reports)
            published = sum(r.enqueued for r in reports)
            errors = [r.error for r in reports if r.error]
            print(
                f"subscriptions={size:>10,} tenants={tenants} {label:<12} due={claimed:>6,} published={published:>6,} "
                f"sweep={elapsed:6.3f}s ({elapsed / tenants * 1000:5.1f} ms/tenant)  [load {loaded:.0f}s]"
                + (f" errors: {errors[:3]}" if errors else ""),
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,10000000", help="total subscriptions, comma-separated")
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--due", type=int, default=8000, help="due subscriptions in total, at every size")
    parser.add_argument("--concurrency", type=int, default=4, help="threads of the fan-out run (the control "
                        "pool's WORKER_CONCURRENCY)")  # fmt: skip
    parser.add_argument("--redis-url", help="use this Redis instead of starting one")
    parser.add_argument("--database-url", help="use this (migrated, empty) database instead of a fresh one")
    args = parser.parse_args()
    with redis_server(args.redis_url) as redis_url:
        for size in (int(s) for s in args.sizes.split(",")):
            run(size, args.tenants, args.due, args.concurrency, redis_url, args.database_url)


if __name__ == "__main__":
    main()
