"""``tenant-worker ledger prune``: the ledger's retention, on request (beat runs it daily too)."""

from __future__ import annotations

import argparse

from tenant_worker.bootstrap import Services
from tenant_worker.cli_common import parsed, print_result
from tenant_worker.services import retention


def _batch_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"--batch-size must be a whole number of rows, at least 1, not {text!r}")
    return value


def cmd_ledger_prune(args: argparse.Namespace, services: Services) -> int:
    """Delete (or, dry, count) the closed reminders of past cycles older than ``--older-than`` days."""
    now = services.clock.now()
    if args.dry_run:
        report = retention.count_prunable(services.uow, args.older_than, now)
        summary = (
            f"{report.deleted} reminders last changed before {report.cutoff:%Y-%m-%d %H:%M} UTC would be deleted "
            "(dry run, nothing changed)"
        )
    else:
        report = retention.prune_ledger(
            services.uow, args.older_than, now, batch_size=args.batch_size, max_seconds=args.max_seconds
        )
        rate = report.deleted / report.seconds if report.seconds else 0.0
        summary = (
            f"{report.deleted} reminders last changed before {report.cutoff:%Y-%m-%d %H:%M} UTC deleted in "
            f"{report.batches} batches, {report.seconds:.1f} s ({rate:,.0f} rows/s)"
        )
        if not report.complete:
            summary += f"; stopped after --max-seconds {args.max_seconds:g}, more remain: run it again"
    print_result(report.as_dict(), args.json, lambda: print(summary))
    return 0 if report.complete else 1


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``ledger`` command and its ``prune``."""
    ledger = sub.add_parser("ledger", help="the reminder ledger's upkeep").add_subparsers(dest="action", required=True)
    prune = ledger.add_parser(
        "prune",
        help="delete closed reminders of past cycles (never a current expiry's) older than DAYS",
        description="Delete, in batches, closed reminders (sent, failed, skipped, unknown) last changed more "
        "than DAYS days ago whose subscription has renewed since or was removed. The rows of a subscription's "
        f"current expiry always stay. DAYS is at least {retention.MIN_RETENTION_DAYS}.",
    )
    prune.add_argument("--older-than", required=True, type=parsed(retention.parse_days), metavar="DAYS")
    prune.add_argument("--dry-run", action="store_true", help="print how many would go; delete nothing")
    prune.add_argument(
        "--batch-size", type=parsed(_batch_size), default=retention.DEFAULT_BATCH_SIZE, help="rows per transaction"
    )
    prune.add_argument(
        "--max-seconds",
        type=float,
        default=float("inf"),
        help="stop after this long (exit status 1 if rows remain; default: until none is left)",
    )
    prune.add_argument("--json", action="store_true")
    prune.set_defaults(handler=cmd_ledger_prune)
