"""Benchmark: the ledger's retention (``ledger prune``) on a large ledger, and what it costs live traffic.

Builds, with set-based SQL, ``--subscriptions`` subscriptions over ``--tenants`` tenants and a ledger of
about ``--rows`` reminders: ``--cycles`` monthly cycles of three windows (5, 3, 1) per subscription, the
current expiry's included, mostly ``sent`` (2% ``failed``, 2% ``skipped``), inserted in the order they
were claimed (oldest first, as a real ledger fills); ``--lapsed-percent`` of the subscriptions lapsed
after their first cycle, so their old rows are of their current expiry and must stay (every prune batch
walks past them). Secondary indexes and foreign keys are dropped for the load and rebuilt after.

Then, for each ``--batch-sizes`` value in turn, prunes the next ``--prune`` oldest prunable rows through
``services.retention.prune_ledger`` (the cut-off is chosen so that about that many rows are older),
while a probe thread loops over a small live tenant's hot statements: the sweep's claim
(``claim_due_reminders``), a dispatch stamp (``stamp_unpublished``, 50 rows) and the send task's claim
(``start_sending``); their latencies during the prune are printed next to a baseline taken before it.
Also prints the plan of one batch (``EXPLAIN ANALYZE``) and the dry run's count time. Asserts nothing.

    .venv/bin/python scripts/bench_prune.py --rows 10000000 --prune 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import threading
import time

import psycopg
from bench_common import add_tenant, bulk_load, database, percentile
from sqlalchemy import text

from tenant_worker.adapters.db import session_factory
from tenant_worker.adapters.ledger_repair import _PRUNABLE, _PRUNE_SQL
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.constants import DEFAULT_SHARD_COUNT
from tenant_worker.domain.localtime import SendingWindow
from tenant_worker.domain.model import TenantSpec
from tenant_worker.services import retention
from tenant_worker.services.tenants import create_tenant

WINDOWS = (5, 3, 1)
DAYS = 400  # the default retention; the bench moves "now" so that the cut-off lands where it wants


def plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def load_tenants(url: str, tenants: int, subscriptions: int) -> list[int]:
    sessions = session_factory(url)
    always = SendingWindow(dt.time(0), dt.time(0))
    with sql_unit_of_work(sessions)() as tx:
        ids = [
            create_tenant(
                tx,
                TenantSpec(f"bench-{n:04d}", "Bench", "UTC", "BenchNet", sending_window=always),
                shard_count=DEFAULT_SHARD_COUNT,
            ).id
            for n in range(tenants)
        ]
    bulk_load(url, ids, subscriptions // tenants, 0, 28)
    return ids


def load_ledger(url: str, cycles: int, lapsed_percent: float) -> int:
    """The ledger of every loaded subscription, oldest claim first; the lapsed ones' expiry moved back
    to their first cycle. Returns the rows inserted."""
    lapsed_every = max(1, round(100 / lapsed_percent)) if lapsed_percent else 0
    with psycopg.connect(plain(url), autocommit=True) as conn:
        constraints = conn.execute("""
            SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
             WHERE conrelid = 'reminders'::regclass AND contype IN ('f', 'u')""").fetchall()
        indexes = conn.execute("""
            SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index
             WHERE indrelid = 'reminders'::regclass AND NOT indisprimary
               AND indexrelid NOT IN (SELECT conindid FROM pg_constraint WHERE contype IN ('u', 'p'))""").fetchall()
        for name, _ in constraints:
            conn.execute(f'ALTER TABLE reminders DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        conn.execute("SET work_mem = '256MB'")
        started = time.perf_counter()
        inserted = conn.execute(
            """
            INSERT INTO reminders (tenant_id, subscription_id, expires_on, window_days, local_date, status,
                                   skip_reason, body, encoding, segments, provider_message_id, attempts,
                                   last_error, enqueued_at, sent_at, created_at, updated_at)
            SELECT s.tenant_id, s.id, x.expires_on, w, x.expires_on - w, x.status,
                   CASE WHEN x.status = 'skipped' THEN 'opted_out' END,
                   CASE WHEN x.status <> 'skipped' THEN 'Hello Customer ' || s.customer_id || ', your Fiber '
                        || 'subscription (EUR 29.95) expires on ' || x.expires_on || '. Renew at example.com/renew '
                        || 'to stay connected. Questions? Call 020 123 4567.' END,
                   CASE WHEN x.status <> 'skipped' THEN 'gsm7' END,
                   CASE WHEN x.status <> 'skipped' THEN 1 END,
                   CASE WHEN x.status = 'sent' THEN md5(s.id::text || '/' || k || '/' || w) END,
                   CASE WHEN x.status = 'skipped' THEN 0 ELSE 1 END,
                   CASE WHEN x.status = 'failed' THEN 'refused: 422 invalid recipient' END,
                   x.claimed + interval '1 second', x.claimed + interval '3 seconds', x.claimed,
                   x.claimed + interval '3 seconds'
              FROM subscriptions s
             CROSS JOIN generate_series(0, %(cycles)s - 1) k
             CROSS JOIN unnest(%(windows)s::int[]) w
             CROSS JOIN LATERAL (
                   SELECT s.expires_on - 30 * k AS expires_on,
                          ((s.expires_on - 30 * k - w)::timestamp + interval '10 hours') AT TIME ZONE 'UTC' AS claimed,
                          CASE (s.id + k * 3 + w) %% 50 WHEN 0 THEN 'failed' WHEN 1 THEN 'skipped' ELSE 'sent' END
                              AS status) x
             WHERE x.expires_on - w < current_date
               AND (%(lapsed)s = 0 OR s.id %% %(lapsed)s <> 0 OR k = %(cycles)s - 1)
             ORDER BY x.claimed, s.id, w
            """,
            {"cycles": cycles, "windows": list(WINDOWS), "lapsed": lapsed_every},
        ).rowcount
        print(f"  ledger insert: {inserted:,} rows in {time.perf_counter() - started:.0f} s", flush=True)
        if lapsed_every:
            conn.execute(
                "UPDATE subscriptions SET expires_on = expires_on - 30 * (%(cycles)s - 1) WHERE id %% %(lapsed)s = 0",
                {"cycles": cycles, "lapsed": lapsed_every},
            )
        started = time.perf_counter()
        for _, definition in indexes:
            conn.execute(definition)
        for name, definition in constraints:
            conn.execute(f'ALTER TABLE reminders ADD CONSTRAINT "{name}" {definition}')
        print(f"  ledger indexes and constraints rebuilt in {time.perf_counter() - started:.0f} s", flush=True)
        conn.execute("VACUUM ANALYZE reminders")
        conn.execute("VACUUM ANALYZE subscriptions")
    return int(inserted)


class Probe(threading.Thread):
    """The live statements of a small tenant, in a loop: sweep claim, dispatch stamp, send claim."""

    def __init__(self, url: str, tenant_id: int) -> None:
        super().__init__(daemon=True)
        self.uow = sql_unit_of_work(session_factory(url))
        self.sessions = session_factory(url)
        self.tenant_id = tenant_id
        self.stop = threading.Event()
        self.times: dict[str, list[float]] = {"sweep claim": [], "stamp 50": [], "start_sending 50": []}

    def timed(self, name: str, call):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        result = call()
        self.times[name].append((time.perf_counter() - started) * 1000)
        return result

    def once(self) -> None:
        today = dt.datetime.now(dt.UTC).date()

        def sweep() -> None:
            with self.uow() as tx:
                tx.ledger(self.tenant_id).claim_due_reminders(today, WINDOWS)

        def stamp() -> list[int]:
            with self.uow() as tx:
                return tx.ledger(self.tenant_id).stamp_unpublished(dt.datetime.now(dt.UTC), 50)

        self.timed("sweep claim", sweep)
        ids = self.timed("stamp 50", stamp)

        def start() -> None:
            with self.uow() as tx:
                tx.ledger(self.tenant_id).start_sending(ids)

        self.timed("start_sending 50", start)
        with self.sessions.begin() as session:  # back to waiting, untimed, for the next round
            session.execute(
                text("UPDATE reminders SET status = 'pending', enqueued_at = NULL, attempts = 0 WHERE id = ANY(:ids)"),
                {"ids": ids},
            )

    def run(self) -> None:
        while not self.stop.is_set():
            self.once()
            time.sleep(0.02)

    def summary(self) -> str:
        parts = []
        for name, values in self.times.items():
            parts.append(
                f"{name}: p50 {percentile(values, 50):.1f} p95 {percentile(values, 95):.1f} "
                f"max {max(values, default=float('nan')):.1f} ms (n={len(values)})"
            )
        return "; ".join(parts)


def baseline(url: str, tenant_id: int, seconds: float) -> str:
    probe = Probe(url, tenant_id)
    probe.start()
    time.sleep(seconds)
    probe.stop.set()
    probe.join()
    return probe.summary()


def cutoff_for(url: str, rows: int) -> dt.datetime:
    """The cut-off that leaves about ``rows`` of the oldest prunable rows older than it."""
    sessions = session_factory(url)
    with sessions() as session:
        value = session.scalar(
            text(f"SELECT r.updated_at FROM ({_PRUNABLE} ORDER BY r.updated_at OFFSET :n LIMIT 1) AS p "
                 "JOIN reminders r USING (id)"),
            {"n": rows, "before": dt.datetime.now(dt.UTC)},
        )  # fmt: skip
    assert value is not None, "fewer prunable rows than asked for"
    return value  # type: ignore[no-any-return]


def explain_batch(url: str, before: dt.datetime, limit: int) -> None:
    with psycopg.connect(plain(url)) as conn:
        sql = _PRUNE_SQL
        for name in ("before", "limit", "after_at", "after_id"):
            sql = sql.replace(f":{name}", f"%({name})s")
        values = {"before": before, "limit": limit, "after_at": dt.datetime(1970, 1, 1, tzinfo=dt.UTC), "after_id": 0}
        plan = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}", values)
        print("  plan of one batch:\n    " + "\n    ".join(row[0] for row in plan), flush=True)
        conn.rollback()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000, help="ledger rows, about")
    parser.add_argument("--cycles", type=int, default=14, help="monthly cycles per subscription")
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--lapsed-percent", type=float, default=5.0)
    parser.add_argument("--prune", type=int, default=1_000_000, help="rows to prune per batch size")
    parser.add_argument("--batch-sizes", default="5000", help="comma-separated; each prunes its own --prune rows")
    parser.add_argument("--probe-seconds", type=float, default=10.0, help="baseline length")
    parser.add_argument("--database-url", help="use this (migrated, empty) database instead of a fresh one")
    args = parser.parse_args()
    # Rows per subscription: its past cycles (the current one is mostly still ahead), or one for the lapsed.
    lapsed = args.lapsed_percent / 100
    subscriptions = int(args.rows / (len(WINDOWS) * ((args.cycles - 1) * (1 - lapsed) + lapsed)))
    with database(args.database_url) as url:
        started = time.perf_counter()
        load_tenants(url, args.tenants, subscriptions)
        rows = load_ledger(url, args.cycles, args.lapsed_percent)
        probe_tenant = add_tenant(session_factory(url), "bench-live", 500, 500, 28)
        with sql_unit_of_work(session_factory(url))() as tx:  # the live tenant's waiting rows
            tx.ledger(probe_tenant).claim_due_reminders(dt.datetime.now(dt.UTC).date(), WINDOWS)
        with psycopg.connect(plain(url)) as conn:
            size = conn.execute("SELECT pg_size_pretty(pg_total_relation_size('reminders'))").fetchone()
        print(
            f"ledger: {rows:,} rows ({size[0] if size else '?'} with indexes), {subscriptions:,} subscriptions, "
            f"built in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        print(f"  baseline ({args.probe_seconds:g} s, no prune): {baseline(url, probe_tenant, args.probe_seconds)}")
        sessions = session_factory(url)
        uow = sql_unit_of_work(sessions)
        for batch_size in (int(b) for b in args.batch_sizes.split(",")):
            before = cutoff_for(url, args.prune)
            now = before + dt.timedelta(days=DAYS)
            counted = time.perf_counter()
            dry = retention.count_prunable(uow, DAYS, now)
            counted = time.perf_counter() - counted
            print(f"batch size {batch_size}: cut-off {before:%Y-%m-%d %H:%M}, dry run counts {dry.deleted:,} "
                  f"in {counted:.1f} s", flush=True)  # fmt: skip
            explain_batch(url, before, batch_size)
            probe = Probe(url, probe_tenant)
            probe.start()
            report = retention.prune_ledger(uow, DAYS, now, batch_size=batch_size, max_seconds=float("inf"))
            probe.stop.set()
            probe.join()
            rate = report.deleted / report.seconds if report.seconds else 0.0
            print(
                f"  pruned {report.deleted:,} rows in {report.batches} batches, {report.seconds:.1f} s "
                f"({rate:,.0f} rows/s, {report.seconds / report.batches * 1000:.0f} ms/batch)",
                flush=True,
            )
            print(f"  during the prune: {probe.summary()}", flush=True)
        with sessions() as session:
            left = session.scalar(text("SELECT count(*) FROM reminders"))
        print(f"ledger rows left: {left:,}")


if __name__ == "__main__":
    main()
