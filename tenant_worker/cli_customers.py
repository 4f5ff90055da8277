"""``tenant-worker customers show|remove|opt-out|erase``: thin wrappers over ``services.customer_ops``.

The text view of ``show`` masks the phone number but for its last 3 digits: it ends up in terminal
scrollback, screen shares and tickets, and "the number ending 678" is enough to confirm a caller.
``--json`` is for programs (a subject access request, the HTTP API) and gives it in full.
"""

from __future__ import annotations

import argparse
import sys

from tenant_worker.bootstrap import Services
from tenant_worker.cli_common import confirmed, print_result
from tenant_worker.errors import EXIT_FAILED
from tenant_worker.services import customer_ops
from tenant_worker.services.customer_ops import ChangeReport, CustomerDetails


def mask_phone(phone: str | None) -> str:
    """``+31612345678`` -> ``*********678``; no number -> ``-``."""
    if not phone:
        return "-"
    return "*" * max(len(phone) - 3, 0) + phone[-3:]


def _when(value: object) -> str:
    return "-" if value is None else str(value)


def _show_text(details: CustomerDetails) -> None:
    customer = details.customer
    state = "erased " + _when(customer.erased_at) if customer.erased_at else ""
    state = state or ("removed " + _when(customer.removed_at) if customer.removed_at else "active")
    print(f"customer {customer.external_ref} of {details.tenant}: {customer.name}")
    print(f"  phone {mask_phone(customer.phone)}, opted out: {'yes' if customer.opted_out else 'no'}, {state}")
    locale = customer.locale or "the tenant's (none of their own)"
    print(f"  locale: {locale}")
    print(f"{'SUB':>8} {'REF':<16} {'PLAN':<16} {'AMOUNT':>12} CUR {'EXPIRES':<10} {'STATUS':<9} REMOVED")
    for s in customer.subscriptions:
        ref = s.external_ref or "-"
        print(
            f"{s.id:>8} {ref:<16} {s.plan:<16} {s.amount!s:>12} {s.currency:<3} {s.expires_on!s:<10} "
            f"{s.status:<9} {_when(s.removed_at)}"
        )
    print(f"{'REMINDER':>8} {'SUB':>8} {'EXPIRES':<10} {'WIN':>3} {'STATUS':<8} {'SKIP_REASON':<21} SENT_AT")
    for r in details.reminders:
        print(
            f"{r.id:>8} {r.subscription_id:>8} {r.expires_on!s:<10} {r.window_days:>3} {r.status:<8} "
            f"{r.skip_reason or '-':<21} {_when(r.sent_at)}"
        )


def cmd_customers_show(args: argparse.Namespace, services: Services) -> int:
    """Print a customer, their subscriptions and their reminders."""
    details = customer_ops.show_customer(services.uow, args.slug, args.ref)
    print_result(details.as_dict(), args.json, lambda: _show_text(details))
    return 0


def _change_summary(report: ChangeReport, done: str, already: str) -> str:
    summary = f"customer {report.customer} of {report.tenant} {done if report.changed else already}"
    summary += f"; {report.cancelled} pending reminders cancelled"
    if report.sending:
        summary += f"; {report.sending} being sent right now cannot be stopped"
    return summary


def cmd_customers_remove(args: argparse.Namespace, services: Services) -> int:
    """Remove a customer and their subscriptions; cancel their pending reminders."""
    report = customer_ops.remove_customer(services.uow, args.slug, args.ref)
    summary = _change_summary(report, "removed", "was already removed")
    print_result(report.as_dict(), args.json, lambda: print(summary))
    return 0


def cmd_customers_opt_out(args: argparse.Namespace, services: Services) -> int:
    """Opt a customer out (or back in with ``--undo``)."""
    report = customer_ops.opt_out_customer(services.uow, args.slug, args.ref, opted_out=not args.undo)
    if args.undo:
        summary = f"customer {args.ref} of {args.slug} " + ("opted back in" if report.changed else "was not opted out")
    else:
        summary = _change_summary(report, "opted out", "was already opted out")
    print_result(report.as_dict(), args.json, lambda: print(summary))
    return 0


def cmd_customers_erase(args: argparse.Namespace, services: Services) -> int:
    """Erase a customer's personal data (after confirmation), keeping anonymous counts."""
    details = customer_ops.show_customer(services.uow, args.slug, args.ref)
    what = (
        f"customer {args.ref} of {args.slug} ({len(details.customer.subscriptions)} subscriptions, "
        f"{len(details.reminders)} reminders): name, phone and SMS texts are deleted for good"
    )
    if not confirmed(args.yes, f"Erase {what}. Go ahead?", f"erasing {what}"):
        return EXIT_FAILED
    report = customer_ops.erase_customer(services.uow, args.slug, args.ref, services.clock, wait=args.wait)
    if not report.erased:
        print(
            f"error: {report.sending} reminders of customer {args.ref} of {args.slug} are still being sent after "
            f"{args.wait:g} s; nothing was erased: run it again in a minute (a send whose worker died is settled "
            "by the recovery tick after STALE_SENDING_SECONDS)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    summary = (
        f"erased customer {args.ref} of {args.slug}: {report.subscriptions} subscriptions and "
        f"{report.reminders} reminders anonymised, {report.cancelled} pending reminders cancelled"
    )
    if report.provider_message_ids:
        summary += (
            f"; MessageBird keeps its own copy of {len(report.provider_message_ids)} messages: "
            "ask it to delete them (ids: " + ", ".join(report.provider_message_ids) + ")"
        )
    print_result(report.as_dict(), args.json, lambda: print(summary))
    return 0


def register(customers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``show``, ``remove``, ``opt-out`` and ``erase`` to the ``customers`` command."""
    show = customers.add_parser("show", help="a customer, their subscriptions and reminders")
    remove = customers.add_parser("remove", help="remove a customer; cancel their pending reminders")
    opt_out = customers.add_parser("opt-out", help="stop texting a customer; cancel their pending reminders")
    erase = customers.add_parser("erase", help="erase a customer's personal data (right to erasure)")
    for parser in (show, remove, opt_out, erase):
        parser.add_argument("slug")
        parser.add_argument("ref", help="the customer's external_ref")
        parser.add_argument("--json", action="store_true")
    opt_out.add_argument("--undo", action="store_true", help="opt the customer back in")
    erase.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    erase.add_argument(
        "--wait",
        type=float,
        default=customer_ops.ERASE_WAIT_SECONDS,
        help="seconds to wait for reminders being sent right now (default %(default)g)",
    )
    show.set_defaults(handler=cmd_customers_show)
    remove.set_defaults(handler=cmd_customers_remove)
    opt_out.set_defaults(handler=cmd_customers_opt_out)
    erase.set_defaults(handler=cmd_customers_erase)
