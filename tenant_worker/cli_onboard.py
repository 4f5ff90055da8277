"""``tenant-worker tenant onboard|offboard`` (also ``scripts/onboard_tenant.py``): thin wrappers."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tenant_worker.bootstrap import Services
from tenant_worker.services import onboarding
from tenant_worker.services.definitions import parse_definition, read_definition_file


class ProgressBar:
    """A progress bar on stderr: redrawn in place on a terminal, a line per 10% otherwise."""

    def __init__(self, label: str, stream: Any = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.last_tenth = -1

    def __call__(self, done: int, total: int) -> None:
        """Show ``done`` of ``total``."""
        fraction = done / total if total else 1.0
        if self.stream.isatty():
            bar = "#" * int(fraction * 30)
            self.stream.write(f"\r{self.label} [{bar:<30}] {done}/{total}")
            if done >= total:
                self.stream.write("\n")
        elif int(fraction * 10) > self.last_tenth:
            self.last_tenth = int(fraction * 10)
            self.stream.write(f"{self.label}: {done}/{total}\n")
        self.stream.flush()


def cmd_onboard(args: argparse.Namespace, services: Services) -> int:
    """Validate a definition (and customers CSV), then create/update the tenant and its schedule."""
    definition = parse_definition(read_definition_file(Path(args.file)))
    report = onboarding.onboard(
        services.uow,
        services.schedule_store,
        definition,
        Path(args.customers) if args.customers else None,
        args.region,
        shard_count=services.settings.shard_count,
        dry_run=args.dry_run,
        allow_rejects=args.allow_rejects,
        progress=ProgressBar("customers"),
    )
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
        return 0
    prefix = "would " if report.dry_run else ""
    print(f"tenant {report.tenant}: " + ("dry run, nothing written" if report.dry_run else "onboarded"))
    for change in report.changes or ["no changes to tenant or templates"]:
        print(f"  {prefix}{change}")
    if report.customers:
        c = report.customers
        print(f"  customers: {prefix}create {c['created']}, update {c['updated']} ({c['renewed']} renewed), "
              f"{c['unchanged']} unchanged")  # fmt: skip
    if report.rejected:
        print(f"  {report.rejected} rejected rows written to {report.rejects_file}")
    print(f"  schedule: {report.schedule}; next run {report.next_run_local} ({report.next_run_utc})")
    return 0


def cmd_offboard(args: argparse.Namespace, services: Services) -> int:
    """Pause, drain and remove a tenant's schedule (data kept unless --purge)."""
    report = onboarding.offboard(
        services.uow, services.schedule_store, args.slug, purge=args.purge, drain_timeout=args.drain_timeout
    )
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(
            f"tenant {report.tenant} offboarded: {report.cancelled_pending} pending reminders cancelled, "
            f"schedule removed, data {'purged' if report.purged else 'kept'}"
        )
    if report.still_sending:
        print(
            f"{report.still_sending} reminders were still sending after {args.drain_timeout:g}s; "
            "data kept: run offboard again once they finished",
            file=sys.stderr,
        )
        return 1
    return 0


def register(tenant: Any) -> None:
    """Add ``onboard`` and ``offboard`` to the ``tenant`` subcommands."""
    onboard = tenant.add_parser("onboard", help="create or update a tenant from a TOML/YAML definition")
    add_onboard_arguments(onboard)
    offboard = tenant.add_parser("offboard", help="pause, drain and remove a tenant's schedule")
    offboard.add_argument("slug")
    offboard.add_argument("--purge", action="store_true", help="also delete the tenant and all its data")
    offboard.add_argument("--drain-timeout", type=float, default=60.0, help="seconds to wait for in-flight sends")
    offboard.add_argument("--json", action="store_true")
    offboard.set_defaults(handler=cmd_offboard)


def add_onboard_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by ``tenant onboard`` and ``scripts/onboard_tenant.py``."""
    parser.add_argument("file", help="tenant definition (.toml, .yaml or .yml)")
    parser.add_argument("--customers", help="customers CSV (see README)")
    parser.add_argument("--region", help="country (e.g. NL) for numbers written without +country code")
    parser.add_argument("--dry-run", action="store_true", help="show what would change; write nothing")
    parser.add_argument("--allow-rejects", action="store_true", help="import the valid rows even if some are rejected")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=cmd_onboard)
