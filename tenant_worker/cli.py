"""The ``tenant-worker`` command: thin wrappers that parse arguments and call one service each."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

from tenant_worker import cli_onboard, cli_schedule, runtime
from tenant_worker.adapters import catalog
from tenant_worker.adapters.db import check_database, get_engine, upgrade_database
from tenant_worker.adapters.redbeat import RedBeatStore
from tenant_worker.adapters.redis_check import check_redis
from tenant_worker.adapters.redis_queues import queue_depths, reserved_count
from tenant_worker.adapters.repository import TenantRepository
from tenant_worker.config import ConfigurationError
from tenant_worker.domain.localtime import SendingWindow, parse_hhmm, parse_window
from tenant_worker.domain.model import DEFAULT_SEND_TIME, TenantSpec, TenantStatus, ValidationError
from tenant_worker.domain.templates import TemplateError
from tenant_worker.domain.windows import DEFAULT_WINDOWS, WindowsError, parse_windows
from tenant_worker.services import customers, sharding, sweep, tenants
from tenant_worker.services.schedules import ScheduleService

Handler = Callable[[argparse.Namespace], int]


def _print(data: Any, as_json: bool, table: Callable[[], None]) -> None:
    if as_json:
        print(json.dumps(data, indent=2, default=str))
    else:
        table()


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-12-31") from None


def _parsed(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from a parser that raises ``ValueError`` with a readable message."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def cmd_db_upgrade(_: argparse.Namespace) -> int:
    """Apply database migrations."""
    upgrade_database(runtime.settings().database_url, shard_count=runtime.settings().shard_count)
    print("database is up to date")
    return 0


def cmd_tenant_create(args: argparse.Namespace) -> int:
    """Create a tenant and its default template."""
    windows = parse_windows(args.windows) if args.windows else DEFAULT_WINDOWS
    spec = TenantSpec(
        args.slug, args.name, args.timezone, args.originator, args.locale, windows,
        send_time=args.send_time, sending_window=args.sending_window,
        dedicated=args.dedicated, rate_per_second=args.rate,
    )  # fmt: skip
    with runtime.sessions().begin() as session:
        row = tenants.create_tenant(session, spec, args.template, runtime.settings().shard_count)
        description = tenants.describe_tenant(session, row)
    from tenant_worker.celery_app import app

    try:
        description["schedule"] = ScheduleService(runtime.sessions(), RedBeatStore(app)).apply(row)
    except (RedisError, OSError) as exc:
        # The tenant exists; beat's schedule sync creates the entry once Redis is back.
        description["schedule"] = "pending sync"
        print(f"warning: schedule not created yet (Redis: {type(exc).__name__}); `schedule sync` will", file=sys.stderr)
    _print(
        description,
        args.json,
        lambda: print(
            f"created tenant {row.slug} ({row.name}, {row.timezone}) on {row.queue}; schedule {description['schedule']}"
        ),
    )
    return 0


def cmd_tenant_move(args: argparse.Namespace) -> int:
    """Move a tenant to another shard or to its dedicated queue; queued work still runs exactly once."""
    settings = runtime.settings()
    target = sharding.target_queue(args.slug, args.shard, args.dedicated, settings.shard_count)
    from tenant_worker.celery_app import app

    def announce() -> None:
        runtime.announce_route_change(app, runtime.redis_client())

    queue = runtime.CeleryReminderQueue(app)
    try:
        report = sharding.move_tenant(runtime.sessions(), args.slug, target, queue, settings, announce)
        # The tenant's daily sweep follows it to the new queue now, not at the next schedule sync.
        with runtime.sessions()() as session:
            ScheduleService(runtime.sessions(), RedBeatStore(app)).apply(catalog.find_tenant(session, args.slug))
    except (RedisError, OSError) as exc:
        print(
            f"error: moved {args.slug} to {target}, but Redis is unreachable ({type(exc).__name__}): other "
            "processes pick the new queue up within a minute and the next sweep re-publishes its pending work",
            file=sys.stderr,
        )
        return 1
    _print(
        report.as_dict(),
        args.json,
        lambda: print(
            f"moved {report.tenant}: {report.old_queue} -> {report.new_queue}; {report.republished} pending "
            f"re-published, {report.published} more published, {report.backlog} waiting in the ledger"
            + (f" - {report.error}" if report.error else "")
        ),
    )
    return 1 if report.error else 0


def cmd_queues(args: argparse.Namespace) -> int:
    """Print the depth of every shard, dedicated, control and default queue."""
    settings = runtime.settings()
    with runtime.sessions()() as session:
        infos = sharding.known_queues(session, settings.shard_count)
    client = runtime.redis_client()
    depths = queue_depths(client, [info.name for info in infos])
    rows = [{"queue": i.name, "kind": i.kind, "depth": depths[i.name], "tenants": len(i.tenants)} for i in infos]
    data = {"queues": rows, "total": sum(depths.values()), "reserved": reserved_count(client)}

    def table() -> None:
        print(f"{'QUEUE':<40} {'KIND':<10} {'TENANTS':>7} {'DEPTH':>8}")
        for r in rows:
            print(f"{r['queue']:<40} {r['kind']:<10} {r['tenants']:>7} {r['depth']:>8}")
        print(f"{'total waiting':<59} {data['total']:>8}")
        print(f"{'reserved by workers (running, prefetched, retry countdown)':<59} {data['reserved']:>8}")

    _print(data, args.json, table)
    return 0


def cmd_tenant_list(args: argparse.Namespace) -> int:
    """List tenants."""
    with runtime.sessions()() as session:
        rows = [tenants.describe_tenant(session, t) for t in catalog.list_tenants(session)]

    def table() -> None:
        print(f"{'SLUG':<24} {'STATUS':<8} {'TIMEZONE':<24} {'WINDOWS':<10} NAME")
        for r in rows:
            windows = ",".join(map(str, r["windows"]))
            print(f"{r['slug']:<24} {r['status']:<8} {r['timezone']:<24} {windows:<10} {r['name']}")

    _print(rows, args.json, table)
    return 0


def cmd_tenant_show(args: argparse.Namespace) -> int:
    """Show one tenant with its templates."""
    with runtime.sessions()() as session:
        data = tenants.describe_tenant(session, catalog.find_tenant(session, args.slug))
    _print(data, args.json, lambda: print(json.dumps(data, indent=2)))
    return 0


def cmd_tenant_template(args: argparse.Namespace) -> int:
    """Save a template (validated now, not when an SMS is sent)."""
    with runtime.sessions().begin() as session:
        tenants.save_template(session, args.slug, args.text, args.window, args.locale)
    print(f"template saved for {args.slug} (window {args.window or 'any'}, locale {args.locale or 'any'})")
    return 0


def cmd_customers_import(args: argparse.Namespace) -> int:
    """Import a customers CSV: all rows or none."""
    text = Path(args.file).read_text(encoding="utf-8-sig")
    with runtime.sessions().begin() as session:
        counts = customers.import_customers(session, args.slug, text, args.region)
    print(
        f"imported into {args.slug}: {counts.created} created, {counts.updated} updated "
        f"({counts.renewed} renewed), {counts.unchanged} unchanged"
    )
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """Sweep one tenant or all active ones."""
    sessions = runtime.sessions()
    if args.tenant:
        slugs = [args.tenant]
    else:
        with sessions() as session:
            slugs = [t.slug for t in catalog.list_tenants(session, TenantStatus.ACTIVE)]
    if args.dry_run:
        return _dry_run(slugs, args)
    settings = runtime.settings()
    from tenant_worker.celery_app import app

    queue = runtime.CeleryReminderQueue(app)
    reports = [sweep.sweep_tenant(sessions, slug, queue, settings, args.date) for slug in slugs]
    data = [r.as_dict() for r in reports]

    def table() -> None:
        for r in reports:
            print(
                f"{r.tenant} {r.local_date}: {r.claimed} claimed ({r.skipped} skipped), {r.enqueued} enqueued, "
                f"{r.re_enqueued} re-enqueued, {r.deferred} deferred, {r.marked_unknown} marked unknown"
                + (f" - {r.error}" if r.error else "")
            )

    _print(data, args.json, table)
    return 1 if any(r.not_enqueued for r in reports) else 0


def _dry_run(slugs: Sequence[str], args: argparse.Namespace) -> int:
    out = []
    for slug in slugs:
        tenant, day, lines = sweep.preview_sweep(runtime.sessions(), slug, args.date)
        out.append({"tenant": slug, "local_date": day.isoformat(), "reminders": [vars(line) for line in lines]})
        if not args.json:
            print(f"{slug} {day}: {len(lines)} reminders would be created (dry run, nothing written)")
            for line in lines:
                what = f"skip ({line.skip_reason})" if line.skip_reason else f"{line.segments} SMS: {line.body}"
                print(f"  window {line.window} to {line.recipient} from {tenant.originator}: {what}")
    if args.json:
        print(json.dumps(out, indent=2, default=str))
    return 0


def cmd_reminders_list(args: argparse.Namespace) -> int:
    """List a tenant's ledger."""
    with runtime.sessions()() as session:
        tenant = catalog.find_tenant(session, args.tenant)
        rows = TenantRepository(session, tenant.id).list_reminders(args.status, args.limit)
    fields = ("id", "subscription_id", "expires_on", "window_days", "local_date", "status", "skip_reason")
    more = ("segments", "provider_message_id", "attempts", "last_error", "sent_at", "created_at")
    data = [{name: getattr(r, name) for name in fields + more} for r in rows]

    def table() -> None:
        print(f"{'ID':>8} {'EXPIRES':<10} {'WIN':>3} {'STATUS':<8} {'ATT':>3} DETAIL")
        for r in rows:
            detail = r.skip_reason or r.last_error or r.provider_message_id or ""
            print(f"{r.id:>8} {r.expires_on!s:<10} {r.window_days:>3} {r.status:<8} {r.attempts:>3} {detail}")

    _print(data, args.json, table)
    return 0


def worker_selection(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """Split ``tenant-worker worker`` arguments into our queue selection and Celery's own options."""
    parser = argparse.ArgumentParser(prog="tenant-worker worker", add_help=False, allow_abbrev=False)
    parser.add_argument("--shards", help="shard numbers or ranges, e.g. 0-7 or 0-3,8")
    parser.add_argument("-Q", "--queues", action="append", default=[], help="queue names, comma-separated")
    parser.add_argument("--tenant", action="append", default=[], help="a tenant with a dedicated queue")
    return parser.parse_known_args(list(argv))


def cmd_worker(args: argparse.Namespace) -> int:
    """Start a Celery worker consuming the selected queues (other options go to ``celery worker``)."""
    settings = runtime.settings()
    settings.require_credentials()
    check_redis(settings.redis_url)
    check_database(settings.database_url)
    selection, extra = worker_selection(args.celery_args)
    with runtime.sessions()() as session:
        queues = sharding.worker_queues(
            session, settings.shard_count, selection.shards, selection.queues, selection.tenant
        )
    # Engines must not cross the fork of a prefork pool (an operator may choose --pool prefork).
    get_engine(settings.database_url).dispose()
    from tenant_worker.celery_app import app

    app.worker_main(["worker", "--queues", ",".join(queues), *extra])
    return 0


def cmd_beat(args: argparse.Namespace) -> int:
    """Start Celery beat for this app (extra arguments go to ``celery beat``)."""
    settings = runtime.settings()
    settings.require_credentials()
    check_redis(settings.redis_url)
    from tenant_worker.adapters.redbeat import BeatLockLost
    from tenant_worker.celery_app import app

    try:
        app.start(["beat", *args.celery_args])
    except BeatLockLost as exc:
        # Another beat leads now; exit non-zero so the supervisor restarts this one as a standby.
        print(f"error: {exc}; exiting so the supervisor restarts this beat as a standby", file=sys.stderr)
        return 3
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The full command tree."""
    parser = argparse.ArgumentParser(prog="tenant-worker", description="Multi-tenant payment-reminder SMS worker.")
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="action", required=True)
    db.add_parser("upgrade", help="apply migrations").set_defaults(handler=cmd_db_upgrade)

    tenant = sub.add_parser("tenant", help="manage tenants").add_subparsers(dest="action", required=True)
    create = tenant.add_parser("create", help="create a tenant")
    create.add_argument("--slug", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--timezone", required=True, help="IANA zone, e.g. Europe/Amsterdam")
    create.add_argument("--originator", required=True, help="sender: <=11 letters/digits or an E.164 number")
    create.add_argument("--locale", default="en")
    create.add_argument("--windows", help="days before expiry, e.g. 5,3,1 (default)")
    create.add_argument("--template", help="SMS template; placeholders: see README")
    create.add_argument("--send-time", type=_parsed(parse_hhmm), default=DEFAULT_SEND_TIME, help="local HH:MM")
    create.add_argument(
        "--sending-window", type=_parsed(parse_window), default=SendingWindow(), help="local, e.g. 08:00-21:00"
    )
    create.add_argument("--dedicated", action="store_true", help="large tenant: its own queue and pool")
    create.add_argument("--rate", type=float, help="cap on this tenant's SMS per second")
    create.add_argument("--json", action="store_true")
    create.set_defaults(handler=cmd_tenant_create)
    move = tenant.add_parser("move", help="move a tenant to another shard or to its dedicated queue")
    move.add_argument("slug")
    target = move.add_mutually_exclusive_group(required=True)
    target.add_argument("--shard", type=int, help="shard number")
    target.add_argument("--dedicated", action="store_true", help="the queue reminders.tenant.<slug>")
    move.add_argument("--json", action="store_true")
    move.set_defaults(handler=cmd_tenant_move)
    listing = tenant.add_parser("list", help="list tenants")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_tenant_list)
    show = tenant.add_parser("show", help="show a tenant")
    show.add_argument("slug")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_tenant_show)
    template = tenant.add_parser("template", help="save an SMS template")
    template.add_argument("slug")
    template.add_argument("text")
    template.add_argument("--window", type=int, help="only for this window (days)")
    template.add_argument("--locale", help="only for this locale")
    template.set_defaults(handler=cmd_tenant_template)

    cust = sub.add_parser("customers", help="manage customers").add_subparsers(dest="action", required=True)
    imp = cust.add_parser("import", help="import a customers CSV (all rows or none)")
    imp.add_argument("slug")
    imp.add_argument("file")
    imp.add_argument("--region", help="country (e.g. NL) for numbers written without +country code")
    imp.set_defaults(handler=cmd_customers_import)

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

    cli_schedule.register(sub)
    cli_onboard.register(tenant)
    queues = sub.add_parser("queues", help="depth of every shard, dedicated and control queue")
    queues.add_argument("--json", action="store_true")
    queues.set_defaults(handler=cmd_queues)

    for name, handler in (("worker", cmd_worker), ("beat", cmd_beat)):
        p = sub.add_parser(name, help=f"run celery {name} (extra options are passed to Celery)")
        p.add_argument("celery_args", nargs=argparse.REMAINDER)
        p.set_defaults(handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run a command, turning user errors into one clear message and exit status 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough = {"worker": cmd_worker, "beat": cmd_beat}
    if argv and argv[0] in passthrough and not {"-h", "--help"} & set(argv[1:2]):
        # Everything after `worker`/`beat` belongs to Celery, including its --options.
        args = argparse.Namespace(handler=passthrough[argv[0]], celery_args=argv[1:])
    else:
        args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except (ValidationError, TemplateError, WindowsError) as exc:
        problems = getattr(exc, "problems", None) or [str(exc)]
        print("error: " + "\n  ".join(["invalid input:", *problems]), file=sys.stderr)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except OSError as exc:
        print(f"error: {exc.strerror or exc}: {getattr(exc, 'filename', '')}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
