"""Benchmark: the customer import (``tenant-worker customers import``) against raw COPY.

For each size, on a fresh database of the same server:

* ``raw COPY``: the same CSV file into a plain table of text columns (``COPY ... (FORMAT csv)``):
  the fastest PostgreSQL takes these bytes, the limit an import is measured against;
* ``write floor``: ``INSERT ... SELECT`` of those rows from that table into ``customers`` and
  ``subscriptions`` of another tenant, with no validation, no staging and no merge: what writing the
  rows into the real, indexed and constrained tables costs by itself;
* ``first import``: the file into an empty tenant (validation, COPY into staging, set-based merge);
* ``re-import``: a file with 1% of the rows changed (a new ``expires_on``) and 1% new rows (with
  ``--full-sync``: as a full sync, the nightly export's case, which also finds what the file lacks).

Each import runs in a subprocess of its own (``--child``), which reports its peak RSS
(``getrusage(RUSAGE_SELF).ru_maxrss``) and the import's own time (``sync_customers``, from the first
row read to the commit); the process's wall time, interpreter start and imports included, is shown
beside it. Prints the numbers and the ratios against the targets (on the import's own time): first
import <= 5x raw COPY, re-import <= 0.25x the first import, RSS <= 300 MB. Asserts nothing.

    .venv/bin/python scripts/bench_import.py --sizes 100000,1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from bench_common import database

from tenant_worker.domain.localtime import SendingWindow

HEADER = "external_ref,subscription_ref,name,phone,plan,amount,currency,expires_on"
EXPIRES = dt.date(2030, 1, 1)
ALWAYS_OPEN = SendingWindow(dt.time(0), dt.time(0))
RAW_TABLE = "CREATE TABLE raw_copy (" + ", ".join(f"{c} text" for c in HEADER.split(",")) + ")"


def write_csv(path: Path, rows: int, changed: int = 0, new: int = 0) -> None:
    """``rows`` customers (the first ``changed`` with a later ``expires_on``) and ``new`` more."""
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER + "\n")
        for i in range(rows + new):
            expires = EXPIRES + dt.timedelta(days=30 if i < changed else 0)
            out.write(f"cust-{i:08d},,Customer {i},+3161{i % 10_000_000:07d},Fiber 100,29.95,EUR,{expires}\n")


def load_raw(conn: psycopg.Connection[tuple[object, ...]], path: Path) -> None:
    """COPY the file into ``raw_copy``, a plain table of text columns (created before), and commit."""
    with (
        conn.cursor() as cur,
        cur.copy("COPY raw_copy FROM STDIN (FORMAT csv, HEADER)") as copy,
        path.open("rb") as data,
    ):
        while block := data.read(1 << 20):
            copy.write(block)
    conn.commit()


def raw_copy(url: str, path: Path) -> float:
    """Seconds to COPY the file into a plain table of text columns."""
    with psycopg.connect(url) as conn:
        conn.execute(RAW_TABLE)
        started = time.perf_counter()
        load_raw(conn, path)
        seconds = time.perf_counter() - started
        conn.execute("DROP TABLE raw_copy")
        conn.commit()
    return seconds


def write_floor(url: str, path: Path, tenant_id: int) -> float:
    """Seconds to write the file's rows, unvalidated, into the tenant's customers and subscriptions."""
    with psycopg.connect(url) as conn:
        conn.execute(RAW_TABLE)
        load_raw(conn, path)
        started = time.perf_counter()
        conn.execute(
            "INSERT INTO customers (tenant_id, external_ref, name, phone) "
            "SELECT %(t)s, external_ref, name, phone FROM raw_copy",
            {"t": tenant_id},
        )
        conn.execute(
            "INSERT INTO subscriptions (tenant_id, customer_id, plan, amount, currency, expires_on) "
            "SELECT %(t)s, c.id, r.plan, r.amount::numeric, r.currency, r.expires_on::date FROM raw_copy r "
            "JOIN customers c ON c.tenant_id = %(t)s AND c.external_ref = r.external_ref",
            {"t": tenant_id},
        )
        conn.commit()
        seconds = time.perf_counter() - started
        conn.execute("DROP TABLE raw_copy")
        conn.commit()
    return seconds


def run_child(url: str, slug: str, path: Path, full_sync: bool = False) -> dict[str, object]:
    """Import ``path`` in a subprocess; its wall time (seen from here), counts and peak RSS."""
    started = time.perf_counter()
    args = [sys.executable, __file__, "--child", url, slug, str(path), "full" if full_sync else ""]
    out = subprocess.run(args, capture_output=True, text=True, check=True)
    result: dict[str, object] = json.loads(out.stdout)
    result["seconds"] = time.perf_counter() - started
    return result


def child(url: str, slug: str, path: str, full_sync: str) -> None:
    """The import as the CLI runs it, then counts and peak RSS as JSON on stdout."""
    from tenant_worker.adapters import csv_files
    from tenant_worker.adapters.db import session_factory
    from tenant_worker.adapters.sql_storage import sql_unit_of_work
    from tenant_worker.services.customers import ImportOptions, source_rows, sync_customers

    uow = sql_unit_of_work(session_factory(url))
    started = time.perf_counter()
    with uow() as tx:
        rows = source_rows(csv_files.stream_rows(Path(path)))
        report = sync_customers(tx, slug, rows, ImportOptions(full_sync=bool(full_sync)))
    seconds = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"counts": report.as_dict(), "import_seconds": seconds, "rss_mb": rss_mb}))


def bench(size: int, full_sync: bool) -> None:
    """One size: raw COPY, first import, 1%+1% re-import."""
    from tenant_worker.adapters.db import session_factory
    from tenant_worker.adapters.sql_storage import sql_unit_of_work
    from tenant_worker.domain.model import TenantSpec

    with database(None) as url, tempfile.TemporaryDirectory() as tmp:
        first, delta = Path(tmp) / "first.csv", Path(tmp) / "delta.csv"
        write_csv(first, size)
        write_csv(delta, size, changed=size // 100, new=size // 100)
        spec = TenantSpec("bench-import", "Bench", "Europe/Amsterdam", "Bench", sending_window=ALWAYS_OPEN)
        floor_spec = TenantSpec("bench-floor", "Floor", "Europe/Amsterdam", "Floor", sending_window=ALWAYS_OPEN)
        with sql_unit_of_work(session_factory(url))() as tx:
            tx.catalog.create_tenant(spec.validated(), 16)
            floor_tenant = tx.catalog.create_tenant(floor_spec.validated(), 16)
        plain = url.replace("postgresql+psycopg", "postgresql")
        raw = raw_copy(plain, first)
        one = run_child(url, "bench-import", first)
        two = run_child(url, "bench-import", delta, full_sync)
        floor = write_floor(plain, first, floor_tenant.id)
        mb = first.stat().st_size / 1e6
        print(f"\n{size:,} rows ({mb:.0f} MB CSV)")
        print(f"  raw COPY         {raw:8.2f} s  {size / raw:>10,.0f} rows/s")
        print(f"  write floor      {floor:8.2f} s  {size / floor:>10,.0f} rows/s")
        for name, run in (("first import", one), ("full sync 1%+1%" if full_sync else "re-import 1%+1%", two)):
            seconds = float(run["import_seconds"])  # type: ignore[arg-type]
            counts = run["counts"]
            assert isinstance(counts, dict)
            summary = ", ".join(f"{k} {counts[k]:,}" for k in ("created", "updated", "unchanged"))
            print(
                f"  {name:<16} {seconds:8.2f} s  {size / seconds:>10,.0f} rows/s  (process {run['seconds']:.2f} s)"
                f"  RSS {run['rss_mb']:.0f} MB  ({summary})"
            )
        first_s, delta_s = float(one["import_seconds"]), float(two["import_seconds"])  # type: ignore[arg-type]
        peak = max(float(one["rss_mb"]), float(two["rss_mb"]))  # type: ignore[arg-type]
        print(f"  first / raw COPY   {first_s / raw:5.2f}x  (target <= 5x)")
        print(f"  floor / raw COPY   {floor / raw:5.2f}x  (no import can be below this)")
        print(f"  first / floor      {first_s / floor:5.2f}x")
        print(f"  delta / first      {delta_s / first_s:5.2f}x  (target <= 0.25x)")
        print(f"  peak RSS           {peak:5.0f} MB (target <= 300 MB)")


def main() -> None:
    """Parse arguments and run each size."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:6])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000", help="comma-separated row counts")
    parser.add_argument("--full-sync", action="store_true", help="the re-import as a full sync")
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        bench(size, args.full_sync)


if __name__ == "__main__":
    main()
