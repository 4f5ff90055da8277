"""``tenant-worker reminders retry``: send again, on request, reminders that ended failed or unknown."""

from __future__ import annotations

import argparse
import datetime as dt

from tenant_worker.bootstrap import Services
from tenant_worker.cli_common import confirmed, print_result
from tenant_worker.config import ConfigurationError
from tenant_worker.services import resend


def _instant(text: str) -> dt.datetime:
    """An ISO date or instant; without an offset it is UTC."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date or time like 2026-12-01 or 2026-12-01T08:00Z"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def cmd_reminders_retry(args: argparse.Namespace, services: Services) -> int:
    """Show the count, ask (unless --yes), reopen the reminders and publish them."""
    if args.status == "unknown" and not args.allow_duplicates:
        raise ConfigurationError(
            "unknown reminders may already have been delivered; resending them can text a customer twice. "
            "Check them first, then pass --allow-duplicates"
        )
    count = resend.count_resendable(services.uow, args.tenant, args.status, args.since)
    since = f" since {args.since.isoformat()}" if args.since else ""
    what = f"{count} {args.status} reminders of {args.tenant}{since}"
    if args.dry_run or count == 0:
        summary = f"{what} would be sent again (dry run, nothing changed)"
        if not count:
            summary = f"no {args.status} reminders of {args.tenant}{since} to send again; nothing changed"
        data = {"tenant": args.tenant, "status": args.status, "matching": count, "reopened": 0}
        print_result(data, args.json, lambda: print(summary))
        return 0
    if not confirmed(args.yes, f"Send {what} again?", f"{what} would be sent again"):
        return 1
    report = resend.resend(services.uow, args.tenant, args.status, args.since, services.queue, services.settings)
    summary = f"{report.reopened} reminders of {args.tenant} back to pending, {report.published} published now"
    summary += f"; {report.error}" if report.error else "; the rest follow as batches finish"
    print_result(report.as_dict(), args.json, lambda: print(summary))
    return 0


def register_retry(reminders: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``reminders retry`` to the ``reminders`` command."""
    retry = reminders.add_parser("retry", help="send failed (or, explicitly, unknown) reminders again")
    retry.add_argument("--tenant", required=True)
    retry.add_argument("--status", required=True, choices=["failed", "unknown"])
    retry.add_argument("--since", type=_instant, help="only reminders that ended at or after this date/time (UTC)")
    retry.add_argument("--dry-run", action="store_true", help="print the count; change nothing")
    retry.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    retry.add_argument(
        "--allow-duplicates",
        action="store_true",
        help="required for --status unknown: those may have been delivered already",
    )
    retry.add_argument("--json", action="store_true")
    retry.set_defaults(handler=cmd_reminders_retry)
