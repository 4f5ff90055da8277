"""Benchmark tenants' RedBeat schedules; prints figures, asserts nothing.

    .venv/bin/python scripts/bench_schedules.py [--tenants 10000] [--due 1000]

Starts its own password-protected redis-server on a free port and creates a throwaway database on
the local PostgreSQL (TEST_PG_ADMIN_URL, default postgresql://postgres@127.0.0.1:5432/postgres), then:

1. onboards N tenants (schedules only, no customers) through the onboarding service, each exactly as
   `tenant-worker tenant onboard` does, 8 at a time (:func:`onboard_many`: the work is round trips and
   commits, so a few threads multiply throughput);
2. times RedBeat ticks with N entries when nothing is due (RedBeat asks its sorted set only for
   entries due now or within one beat interval);
3. makes D tenants due in the same minute and times the tick that dispatches them all to Redis.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from bench_common import database, redis_server

from tenant_worker import constants
from tenant_worker.adapters.db import session_factory
from tenant_worker.adapters.redbeat import RedBeatStore, TenantScheduleEntry
from tenant_worker.adapters.redbeat_scheduler import TenantRedBeatScheduler
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.celery_app import create_app
from tenant_worker.config import Settings, load_settings
from tenant_worker.domain.localtime import SendingWindow
from tenant_worker.domain.model import TenantSpec
from tenant_worker.domain.ports import ScheduleStore
from tenant_worker.domain.storage import UnitOfWorkFactory
from tenant_worker.services.definitions import TemplateDefinition, TenantDefinition
from tenant_worker.services.onboarding import OnboardReport, onboard
from tenant_worker.services.tenants import DEFAULT_TEMPLATE

PASSWORD = "b3nch#@:/%pass"
ZONES = ("Europe/Berlin", "Asia/Kolkata", "Australia/Adelaide", "America/Santiago", "America/New_York", "UTC")


def onboard_many(
    uow: UnitOfWorkFactory, store: ScheduleStore, definitions: list[TenantDefinition], shard_count: int, workers: int
) -> list[OnboardReport]:
    """Onboard many tenants concurrently, each as `tenant onboard` does: the work is round trips to
    PostgreSQL and Redis, so a few threads multiply the throughput."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="onboard") as pool:
        return list(pool.map(lambda item: onboard(uow, store, item, shard_count=shard_count), definitions))


def main() -> None:
    """Run the three measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--due", type=int, default=1_000)
    args = parser.parse_args()
    with redis_server(None, PASSWORD) as url, database(None) as database_url:
        settings = replace(load_settings({}), redis_url=url, database_url=database_url)
        run(settings, args.tenants, args.due)


def run(settings: Settings, tenants: int, due: int) -> None:
    """The measurements, on prepared services."""
    app = create_app(settings)
    store, sessions = RedBeatStore(app), session_factory(settings.database_url)
    template = (TemplateDefinition(DEFAULT_TEMPLATE),)
    definitions = [
        TenantDefinition(
            TenantSpec(
                f"bench-{i:05d}",
                f"Bench {i}",
                ZONES[i % len(ZONES)],
                "Bench",
                sending_window=SendingWindow(dt.time(0), dt.time(0)),
            ),
            template,
        )
        for i in range(tenants)
    ]
    started = time.perf_counter()
    onboard_many(sql_unit_of_work(sessions), store, definitions, settings.shard_count, workers=8)
    onboarding = time.perf_counter() - started
    print(
        f"onboarded {tenants} tenants (schedules only, 8 threads) in {onboarding:.1f} s ({tenants / onboarding:.0f}/s)"
    )
    entries = store.redis.zcard(store.conf.schedule_key)

    scheduler = TenantRedBeatScheduler(app=app, lazy=True)
    scheduler.leader_lock = None  # one process: no leader lock to renew
    with app.producer_or_acquire() as producer:
        scheduler._maybe_due_kwargs  # noqa: B018 - created once, as in a running beat
        scheduler.__dict__["_maybe_due_kwargs"] = {"producer": producer}
        idle = []
        for _ in range(50):
            begin = time.perf_counter()
            scheduler.tick()
            idle.append((time.perf_counter() - begin) * 1000)
        print(
            f"idle tick with {entries} entries: median {statistics.median(idle):.2f} ms, "
            f"max {max(idle):.2f} ms (50 ticks, nothing due)"
        )

        # Make `due` tenants due in the current minute: their send time is this UTC minute and they
        # last ran yesterday.
        now = dt.datetime.now(dt.UTC)
        minute = dt.time(now.hour, now.minute)
        yesterday = now - dt.timedelta(days=1)
        for i in range(due):
            slug = f"bench-{i:05d}"
            store.put(slug, "UTC", minute, constants.CONTROL_QUEUE, True, now)
            TenantScheduleEntry.from_key(store.key(slug), app=app).reschedule(last_run_at=yesterday)
        begin = time.perf_counter()
        scheduler.tick()
        elapsed = time.perf_counter() - begin
    queued = store.redis.llen(constants.CONTROL_QUEUE)
    print(f"{due} tenants due in the same minute: tick dispatched {queued} sweep tasks in {elapsed:.2f} s")


if __name__ == "__main__":
    main()
