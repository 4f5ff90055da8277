"""The ``tenant-worker`` command: thin wrappers that parse arguments and call one service each."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence

from tenant_worker import (
    __version__,
    cli_api,
    cli_customers,
    cli_errors,
    cli_import,
    cli_ledger,
    cli_onboard,
    cli_ops,
    cli_reminders,
    cli_schedule,
    cli_tenant,
)
from tenant_worker.adapters.db import check_database, get_engine, upgrade_database
from tenant_worker.adapters.redis_check import check_redis
from tenant_worker.adapters.redis_queues import discarded_counts, queue_depths, reserved_count
from tenant_worker.bootstrap import Services, build_gateway
from tenant_worker.cli_common import print_result as _print
from tenant_worker.cli_common import run_celery
from tenant_worker.services import gateway_access, sharding, sweep

Handler = Callable[[argparse.Namespace, Services], int]


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-12-31") from None


def cmd_db_upgrade(_: argparse.Namespace, services: Services) -> int:
    """Apply database migrations."""
    upgrade_database(services.settings.database_url, shard_count=services.settings.shard_count)
    print("database is up to date")
    return 0


def cmd_queues(args: argparse.Namespace, services: Services) -> int:
    """Print the depth of every shard, dedicated, control and default queue."""
    with services.uow() as tx:
        infos = sharding.known_queues(tx, services.settings.shard_count)
    client = services.redis
    depths = queue_depths(client, [info.name for info in infos])
    rows = [{"queue": i.name, "kind": i.kind, "depth": depths[i.name], "tenants": len(i.tenants)} for i in infos]
    discarded = discarded_counts(client)
    data = {"queues": rows, "total": sum(depths.values()), "reserved": reserved_count(client), "discarded": discarded}

    def table() -> None:
        print(f"{'QUEUE':<40} {'KIND':<10} {'TENANTS':>7} {'DEPTH':>8}")
        for r in rows:
            print(f"{r['queue']:<40} {r['kind']:<10} {r['tenants']:>7} {r['depth']:>8}")
        print(f"{'total waiting':<59} {data['total']:>8}")
        print(f"{'reserved by workers (running, prefetched, retry countdown)':<59} {data['reserved']:>8}")
        for queue, reasons in sorted(discarded.items()):
            for reason, count in sorted(reasons.items()):
                print(f"{'discarded as malformed from ' + queue + ': ' + reason:<59} {count:>8}")

    _print(data, args.json, table)
    return 0


def cmd_sweep(args: argparse.Namespace, services: Services) -> int:
    """Sweep one tenant or all active ones."""
    slugs = [args.tenant] if args.tenant else sweep.tenants_to_sweep(services.uow)
    if args.dry_run:
        return _dry_run(slugs, args, services)
    reports = [sweep.sweep_tenant(services.uow, slug, services.queue, services.settings, args.date) for slug in slugs]
    data = [r.as_dict() for r in reports]

    def table() -> None:
        for r in reports:
            print(
                f"{r.tenant} {r.local_date}: {r.claimed} claimed ({r.skipped} skipped), {r.enqueued} enqueued, "
                f"{r.re_enqueued} re-enqueued, {r.deferred} deferred" + (f" - {r.error}" if r.error else "")
            )

    _print(data, args.json, table)
    return 1 if any(r.not_enqueued for r in reports) else 0


def _dry_run(slugs: Sequence[str], args: argparse.Namespace, services: Services) -> int:
    out = []
    for slug in slugs:
        tenant, day, lines = sweep.preview_sweep(services.uow, slug, args.date)
        out.append({"tenant": slug, "local_date": day.isoformat(), "reminders": [vars(line) for line in lines]})
        if not args.json:
            print(f"{slug} {day}: {len(lines)} reminders would be created (dry run, nothing written)")
            for line in lines:
                what = f"skip ({line.skip_reason})" if line.skip_reason else f"{line.segments} SMS: {line.body}"
                print(f"  window {line.window} to {line.recipient} from {tenant.originator}: {what}")
    if args.json:
        print(json.dumps(out, indent=2, default=str))
    return 0


def cmd_reminders_list(args: argparse.Namespace, services: Services) -> int:
    """List a tenant's ledger."""
    with services.uow() as tx:
        rows = tx.ledger(tx.catalog.find_tenant(args.tenant).id).list_reminders(args.status, args.limit)
    fields = ("id", "subscription_id", "expires_on", "window_days", "local_date", "status", "skip_reason")
    more = ("segments", "provider_message_id", "attempts", "last_error", "sent_at", "created_at")
    delivery = ("delivery_status", "delivery_status_at", "delivery_reason", "delivery_error_code")
    data = [{name: getattr(r, name) for name in fields + more + delivery} for r in rows]

    def table() -> None:
        print(f"{'ID':>8} {'EXPIRES':<10} {'WIN':>3} {'STATUS':<8} {'ATT':>3} {'DELIVERY':<15} DETAIL")
        for r in rows:
            detail = r.skip_reason or r.last_error or r.delivery_reason or r.provider_message_id or ""
            delivered = r.delivery_status or "-"
            row = f"{r.id:>8} {r.expires_on!s:<10} {r.window_days:>3} {r.status:<8} {r.attempts:>3}"
            print(f"{row} {delivered:<15} {detail}")

    _print(data, args.json, table)
    return 0


def add_worker_selection(parser: argparse.ArgumentParser) -> None:
    """The queue selection of ``tenant-worker worker``: parsed by :func:`worker_selection`, and listed
    by ``tenant-worker worker --help`` from the same definitions."""
    parser.add_argument("--shards", help="shard numbers or ranges, e.g. 0-7 or 0-3,8")
    parser.add_argument("-Q", "--queues", action="append", default=[], help="queue names, comma-separated (repeatable)")
    parser.add_argument("--tenant", action="append", default=[], help="a tenant with a dedicated queue (repeatable)")


def worker_selection(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """Split ``tenant-worker worker`` arguments into our queue selection and Celery's own options."""
    parser = argparse.ArgumentParser(prog="tenant-worker worker", add_help=False, allow_abbrev=False)
    add_worker_selection(parser)
    return parser.parse_known_args(list(argv))


def cmd_worker(args: argparse.Namespace, services: Services) -> int:
    """Start a Celery worker consuming the selected queues (other options go to ``celery worker``)."""
    settings = services.settings
    settings.require_credentials()
    check_redis(settings.redis_url, settings.redis_sentinel)
    check_database(settings.database_url, migrated=True)
    if settings.sms_backend == "messagebird":
        gateway = build_gateway(settings)
        line = gateway_access.check_key_at_start(settings, gateway, services.breaker)
        gateway.close()
        if line:
            print(line, file=sys.stderr)
    selection, extra = worker_selection(args.celery_args)
    with services.uow() as tx:
        queues = sharding.worker_queues(tx, settings.shard_count, selection.shards, selection.queues, selection.tenant)
    # Engines must not cross the fork of a prefork pool (an operator may choose --pool prefork).
    get_engine(settings.database_url).dispose()
    # Celery's own status: 0 after a warm shutdown (SIGTERM), 1 when the worker stopped on an error
    # (or Ctrl+C), 2 for an option Celery does not know.
    return run_celery("tenant_worker.celery_app:app", ["worker", "--queues", ",".join(queues), *extra])


def cmd_beat(args: argparse.Namespace, services: Services) -> int:
    """Start Celery beat for this app (extra arguments go to ``celery beat``)."""
    settings = services.settings
    settings.require_credentials()
    check_redis(settings.redis_url, settings.redis_sentinel)
    check_database(settings.database_url, migrated=True)
    from tenant_worker.adapters.redbeat_scheduler import BeatLockLost
    from tenant_worker.celery_app import app

    try:
        status = app.start(["beat", *args.celery_args])
    except BeatLockLost as exc:
        # Another beat leads now; exit non-zero so the supervisor restarts this one as a standby.
        print(f"error: {exc}; exiting so the supervisor restarts this beat as a standby", file=sys.stderr)
        return 3
    # Celery returns a status only when its command line stopped itself (click's Exit): pass it on.
    return int(status or 0)


def build_parser() -> argparse.ArgumentParser:
    """The full command tree."""
    parser = argparse.ArgumentParser(
        prog="tenant-worker",
        description="Multi-tenant payment-reminder SMS worker.",
        epilog="Exit statuses: 0 done, 1 not all done (the command says what) or unexpected error, 2 invalid "
        "input or configuration, 3 beat lost its lock, 4 Redis or PostgreSQL unavailable, 5 database missing "
        "or not migrated.",
    )
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error (first option only)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="action", required=True)
    db.add_parser("upgrade", help="apply migrations").set_defaults(handler=cmd_db_upgrade)

    tenant = cli_tenant.register(sub)

    cust = sub.add_parser("customers", help="manage customers").add_subparsers(dest="action", required=True)
    cli_import.register_import(cust)
    cli_customers.register(cust)

    sw = sub.add_parser("sweep", help="claim due reminders and enqueue them")
    sw.add_argument("--tenant", help="one tenant (default: all active tenants)")
    sw.add_argument("--date", type=_date, help="tenant-local date (default: each tenant's local today)")
    sw.add_argument("--dry-run", action="store_true", help="print what would be sent; write nothing")
    sw.add_argument("--json", action="store_true")
    sw.set_defaults(handler=cmd_sweep)

    rem = sub.add_parser("reminders", help="the reminder ledger").add_subparsers(dest="action", required=True)
    rlist = rem.add_parser("list", help="list reminders")
    rlist.add_argument("--tenant", required=True)
    rlist.add_argument("--status", choices=["pending", "sending", "sent", "failed", "skipped", "unknown"])
    rlist.add_argument("--limit", type=int, default=1000)
    rlist.add_argument("--json", action="store_true")
    rlist.set_defaults(handler=cmd_reminders_list)
    cli_reminders.register_retry(rem)

    cli_schedule.register(sub)
    cli_onboard.register(tenant)
    queues = sub.add_parser("queues", help="depth of every shard, dedicated and control queue")
    queues.add_argument("--json", action="store_true")
    queues.set_defaults(handler=cmd_queues)

    cli_ledger.register(sub)
    cli_api.register(sub)
    cli_ops.register(sub)

    for name, handler in (("worker", cmd_worker), ("beat", cmd_beat)):
        p = sub.add_parser(
            name,
            help=f"run celery {name} (extra options are passed to Celery)",
            description=f"Run celery {name} for this app."
            + (
                " Without a selection it consumes every known queue (a single development worker)."
                if name == "worker"
                else ""
            ),
            epilog=f"Any other option goes to Celery: see `celery -A tenant_worker.celery_app {name} --help` "
            + (
                "(e.g. --loglevel, --hostname, --concurrency)."
                if name == "worker"
                else "(e.g. --loglevel, --max-interval)."
            ),
        )
        if name == "worker":
            add_worker_selection(p)  # for --help: main() hands every argument to cmd_worker as it is
        p.add_argument("celery_args", nargs=argparse.REMAINDER, metavar="CELERY_OPTION", help="passed to Celery")
        p.set_defaults(handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run a command; every error is one line on stderr and a documented exit status
    (``tenant_worker.errors``), with the traceback too after ``--debug``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = argv[:1] == ["--debug"]
    argv = argv[1:] if debug else argv
    passthrough = {"worker": cmd_worker, "beat": cmd_beat}
    if argv and argv[0] in passthrough and not {"-h", "--help"} & set(argv[1:2]):
        # Everything after `worker`/`beat` belongs to Celery, including its --options.
        args = argparse.Namespace(command=argv[0], handler=passthrough[argv[0]], celery_args=argv[1:])
    else:
        args = build_parser().parse_args(argv)
    return cli_errors.run(args.handler, args, debug)


if __name__ == "__main__":
    sys.exit(main())
