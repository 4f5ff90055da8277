"""Benchmark: how long a sweep of every tenant takes as the number of subscriptions grows.

Loads ``--tenants`` tenants holding the given number of subscriptions in total, ``--due`` of them
(8,000 by default, at every size) expiring within the 5-day window, then times one sweep of all
tenants (claim into the ledger and publish each tenant's first batches to a real Redis), for each
size given. The sweep reads only
subscriptions inside the window through the (tenant_id, expires_on) index, so its time should follow
the number due, not the table size. Prints numbers; asserts nothing.

    .venv/bin/python scripts/bench_sweep.py --sizes 1000000,10000000
"""

from __future__ import annotations

import argparse
import time

from bench_common import add_tenant, database, redis_server
from sqlalchemy import text

from tenant_worker.adapters.db import session_factory
from tenant_worker.celery_app import create_app
from tenant_worker.config import Settings
from tenant_worker.runtime import CeleryReminderQueue
from tenant_worker.services.sweep import sweep_tenant


def run(size: int, tenants: int, due_total: int, redis_url: str, database_url: str | None) -> None:
    with database(database_url) as url:
        sessions = session_factory(url)
        per_tenant = size // tenants
        # The same number due at every size: only the table grows, so the time should not.
        due = due_total // tenants
        horizon = 365
        started = time.perf_counter()
        slugs = []
        for n in range(tenants):
            slug = f"bench-{n:04d}"
            add_tenant(sessions, slug, per_tenant, due, horizon)
            slugs.append(slug)
        with sessions.begin() as session:
            session.execute(text("ANALYZE"))
        load = time.perf_counter() - started
        settings = Settings(redis_url=redis_url, database_url=url)
        queue = CeleryReminderQueue(create_app(settings))
        started = time.perf_counter()
        reports = [sweep_tenant(sessions, slug, queue, settings) for slug in slugs]
        elapsed = time.perf_counter() - started
        claimed = sum(r.claimed for r in reports)
        published = sum(r.enqueued for r in reports)
        print(
            f"subscriptions={size:>10,} tenants={tenants} due={claimed:>7,} published={published:>6,} "
            f"sweep={elapsed:6.3f}s ({elapsed / tenants * 1000:.1f} ms/tenant)  [load {load:.0f}s]",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,10000000", help="total subscriptions, comma-separated")
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--due", type=int, default=8000, help="due subscriptions in total, at every size")
    parser.add_argument("--redis-url", help="use this Redis instead of starting one")
    parser.add_argument("--database-url", help="use this (migrated) database instead of a fresh one")
    args = parser.parse_args()
    with redis_server(args.redis_url) as redis_url:
        for size in (int(s) for s in args.sizes.split(",")):
            run(size, args.tenants, args.due, redis_url, args.database_url)


if __name__ == "__main__":
    main()
