"""``tenant-worker customers import``: read the file, call ``services.customers.sync_customers``, report."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from tenant_worker.adapters import csv_files
from tenant_worker.bootstrap import Services
from tenant_worker.domain.model import ValidationError
from tenant_worker.services.customers import (
    DEFAULT_MAX_REMOVALS_PERCENT,
    ImportOptions,
    ImportRefused,
    ImportReport,
    RejectedRow,
    source_rows,
    sync_customers,
)


class RowRate:
    """Rows read and rows per second on stderr, redrawn in place; silent unless stderr is a terminal."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.started = time.monotonic()

    def __call__(self, rows: int) -> None:
        """Show ``rows`` read so far."""
        if self.stream.isatty():
            rate = rows / max(time.monotonic() - self.started, 1e-9)
            self.stream.write(f"\rcustomers: {rows:,} rows read ({rate:,.0f} rows/s)")
            self.stream.flush()


def parse_max_removals(value: str) -> tuple[int | None, float | None]:
    """``N`` subscriptions or ``P%`` of the active ones."""
    try:
        if value.endswith("%"):
            percent = float(value[:-1])
            if not 0 <= percent <= 100:
                raise ValueError
            return None, percent
        count = int(value)
        if count < 0:
            raise ValueError
        return count, None
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: expected a count (500) or a percentage (5%)") from None


def write_rejects(path: Path, rejects: list[RejectedRow]) -> None:
    """Rejected rows with line, reason and cells, escaped against formula injection."""
    columns = sorted({key for r in rejects for key in r.raw})
    rows = ([r.line, r.reason, *(r.raw.get(c, "") for c in columns)] for r in rejects)
    csv_files.write_csv(path, ["line", "reason", *columns], rows)


def cmd_customers_import(args: argparse.Namespace, services: Services) -> int:
    """Import (or, with --full-sync, synchronise) a tenant's customers from a CSV: all or nothing."""
    max_count, max_percent = args.max_removals if args.max_removals else (None, DEFAULT_MAX_REMOVALS_PERCENT)
    options = ImportOptions(
        full_sync=args.full_sync,
        max_removals=max_count,
        max_removals_percent=max_percent,
        allow_rejects=args.allow_rejects,
        dry_run=args.dry_run,
        region=args.region,
    )
    progress = RowRate()
    path = Path(args.file)
    try:
        with services.uow() as tx:
            report = sync_customers(tx, args.slug, source_rows(csv_files.stream_rows(path)), options, progress)
    except ImportRefused as refused:
        _end_progress(progress)
        if args.rejects and refused.report.rejects:
            write_rejects(Path(args.rejects), refused.report.rejects)
            raise ValidationError([*refused.problems, f"rejected rows written to {args.rejects}"]) from None
        raise
    _end_progress(progress)
    if args.rejects and report.rejects:
        write_rejects(Path(args.rejects), report.rejects)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        _print_report(report, args.rejects)
    return 0


def _end_progress(progress: RowRate) -> None:
    if progress.stream.isatty():
        progress.stream.write("\n")


def _print_report(report: ImportReport, rejects_path: str | None) -> None:
    c = report.counts
    verb = "dry run, nothing written" if report.dry_run else "imported"
    print(
        f"{report.tenant}: {verb}: {c.created} created, {c.updated} updated ({c.renewed} renewed), "
        f"{c.unchanged} unchanged, {c.removed} removed, {report.rejected} rejected"
    )
    if report.dry_run:
        for kind, labels in report.samples.items():
            if labels:
                print(f"  would be {kind}: {', '.join(labels)}" + (" ..." if len(labels) == 5 else ""))
    for r in report.rejects[:5]:
        print(f"  rejected line {r.line}: {r.reason}")
    if report.rejects and rejects_path:
        print(f"  rejected rows written to {rejects_path}")


def register_import(customers: Any) -> None:
    """Add ``import`` to the ``customers`` subcommands."""
    imp = customers.add_parser("import", help="import or fully sync a customers CSV (all rows or none)")
    imp.add_argument("slug")
    imp.add_argument("file")
    imp.add_argument("--region", help="country (e.g. NL) for numbers written without +country code")
    imp.add_argument(
        "--full-sync",
        action="store_true",
        help="the file holds all the tenant's customers: remove the others (their pending reminders are skipped)",
    )
    imp.add_argument(
        "--max-removals",
        type=parse_max_removals,
        metavar="N|P%",
        help=f"refuse a full sync removing more (default {DEFAULT_MAX_REMOVALS_PERCENT:g}%% of the subscriptions)",
    )
    imp.add_argument("--allow-rejects", action="store_true", help="import the valid rows even if some are rejected")
    imp.add_argument("--rejects", metavar="PATH", help="write rejected rows (line, reason, cells) to this CSV")
    imp.add_argument("--dry-run", action="store_true", help="report what would change; write nothing")
    imp.add_argument("--json", action="store_true")
    imp.set_defaults(handler=cmd_customers_import)
