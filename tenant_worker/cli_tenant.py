"""``tenant-worker tenant create|move|list|show|template``: thin wrappers over the tenant services.

``tenant template SLUG TEXT`` saves a template, ``tenant template preview SLUG`` shows every template
rendered with sample values, its encoding, segments and worst case (so no tenant can be called
"preview" for ``tenant template``: the slug check in ``TenantSpec`` allows it, the CLI word wins).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from redis.exceptions import RedisError

from tenant_worker.bootstrap import Services
from tenant_worker.cli_common import parsed as _parsed
from tenant_worker.cli_common import print_result as _print
from tenant_worker.domain.gsm_text import describe_char
from tenant_worker.domain.heartbeat import consumed_queues
from tenant_worker.domain.localtime import SendingWindow, parse_hhmm, parse_window
from tenant_worker.domain.model import DATE_STYLES, DEFAULT_DATE_STYLE, DEFAULT_SEND_TIME, TenantSpec
from tenant_worker.domain.sms_limits import DEFAULT_MAX_SEGMENTS
from tenant_worker.domain.windows import DEFAULT_WINDOWS, parse_windows
from tenant_worker.services import sharding, template_preview, tenants


def cmd_tenant_create(args: argparse.Namespace, services: Services) -> int:
    """Create a tenant and its default template."""
    windows = parse_windows(args.windows) if args.windows else DEFAULT_WINDOWS
    spec = TenantSpec(
        args.slug, args.name, args.timezone, args.originator, args.locale, windows,
        send_time=args.send_time, sending_window=args.sending_window,
        dedicated=args.dedicated, rate_per_second=args.rate, max_segments=args.max_segments,
        date_style=args.date_style, normalize_text=args.normalize_text,
    )  # fmt: skip
    with services.uow() as tx:
        row = tenants.create_tenant(tx, spec, args.template, shard_count=services.settings.shard_count)
        description = tenants.describe_tenant(tx, row)
    try:
        description["schedule"] = services.schedules().apply(row)
    except (RedisError, OSError) as exc:
        # The tenant exists; beat's schedule sync creates the entry once Redis is back.
        description["schedule"] = "pending sync"
        print(f"warning: schedule not created yet (Redis: {type(exc).__name__}); `schedule sync` will", file=sys.stderr)
    if args.dedicated:
        _warn_unless_consumed(services, row.queue)
    _print(
        description,
        args.json,
        lambda: print(
            f"created tenant {row.slug} ({row.name}, {row.timezone}) on {row.queue}; schedule {description['schedule']}"
        ),
    )
    return 0


def _warn_unless_consumed(services: Services, queue: str) -> None:
    """A dedicated queue no live worker consumes holds the tenant's reminders until a pool does: say so
    when the tenant is put there (by ``create`` or ``move``), not when its customers complain."""
    try:
        consumed = consumed_queues(services.heartbeats.live())
    except (RedisError, OSError):
        return  # the heartbeats are in Redis; what is said about Redis already says enough
    if queue not in consumed:
        print(
            f"warning: no live worker consumes {queue}: its reminders wait until a pool does; "
            "`tenant-worker pools render --out DIR` writes its compose and Kubernetes pool",
            file=sys.stderr,
        )


def cmd_tenant_move(args: argparse.Namespace, services: Services) -> int:
    """Move a tenant to another shard or to its dedicated queue; queued work still runs exactly once."""
    settings = services.settings
    target = sharding.target_queue(args.slug, args.shard, args.dedicated, settings.shard_count)
    try:
        report = sharding.move_tenant(
            services.uow, args.slug, target, services.queue, settings, services.announce_route_change
        )
        # The tenant's daily sweep follows it to the new queue now, not at the next schedule sync.
        with services.uow() as tx:
            moved = tx.catalog.find_tenant(args.slug)
        services.schedules().apply(moved)
    except (RedisError, OSError) as exc:
        print(
            f"error: moved {args.slug} to {target}, but Redis is unreachable ({type(exc).__name__}): other "
            "processes pick the new queue up within a minute and the next sweep re-publishes its pending work",
            file=sys.stderr,
        )
        return 1
    if args.dedicated:
        _warn_unless_consumed(services, target)
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


def cmd_tenant_list(args: argparse.Namespace, services: Services) -> int:
    """List tenants."""
    with services.uow() as tx:
        rows = [tenants.describe_tenant(tx, t) for t in tx.catalog.list_tenants()]

    def table() -> None:
        print(f"{'SLUG':<24} {'STATUS':<8} {'TIMEZONE':<24} {'WINDOWS':<10} NAME")
        for r in rows:
            windows = ",".join(map(str, r["windows"]))
            print(f"{r['slug']:<24} {r['status']:<8} {r['timezone']:<24} {windows:<10} {r['name']}")

    _print(rows, args.json, table)
    return 0


def cmd_tenant_show(args: argparse.Namespace, services: Services) -> int:
    """Show one tenant with its templates."""
    with services.uow() as tx:
        data = tenants.describe_tenant(tx, tx.catalog.find_tenant(args.slug))
    _print(data, args.json, lambda: print(json.dumps(data, indent=2)))
    return 0


def cmd_tenant_template(args: argparse.Namespace, services: Services) -> int:
    """Save a template (validated now, not when an SMS is sent), or preview them all."""
    if args.slug == "preview":
        return cmd_tenant_template_preview(args, services)
    if args.text is None:
        print(
            "error: tenant template SLUG TEXT saves a template; tenant template preview SLUG previews", file=sys.stderr
        )
        return 2
    with services.uow() as tx:
        saved = tenants.save_template(tx, args.slug, args.text, args.window, args.locale)
    print(f"template saved for {args.slug} (window {saved.window_days or 'any'}, locale {saved.locale or 'any'})")
    return 0


def cmd_tenant_template_preview(args: argparse.Namespace, services: Services) -> int:
    """Every template rendered with sample values, with its encoding, segments and worst case."""
    if args.text is None:
        print("error: tenant template preview needs the tenant's slug", file=sys.stderr)
        return 2
    with services.uow() as tx:
        tenant, rows = template_preview.preview_templates(tx, args.text, args.locale_list or ())
    if args.json:
        print(json.dumps({"tenant": tenant.slug, "max_segments": tenant.max_segments,
                          "templates": [asdict(row) for row in rows]}, indent=2, ensure_ascii=False))  # fmt: skip
        return 0 if all(row.fits for row in rows) else 1
    for row in rows:
        print(_preview_heading(row))
        if row.sample is None or row.worst is None:
            print(f"  error: {row.error}")
            continue
        print(f"  {row.sample.body}")
        print(f"  sample: {_cost(row.sample)}; worst case: {_cost(row.worst)}"
              f"{'' if row.fits else f' -- over max_segments {tenant.max_segments}'}")  # fmt: skip
        forced = row.worst.ucs2_chars or row.sample.ucs2_chars
        if forced:
            print(f"  UCS-2 because of: {', '.join(describe_char(char) for char in forced)}")
    return 0 if all(row.fits for row in rows) else 1


def _preview_heading(row: template_preview.TemplatePreview) -> str:
    scope = f"template (window {row.template_window or 'any'}, locale {row.template_locale or 'any'})"
    who = f"customer locale {row.customer_locale}: " if row.customer_locale else ""
    return f"{who}window {row.window}, {scope}, formatted as {row.locale}"


def _cost(measured: template_preview.Measured) -> str:
    unit = "septets" if measured.encoding == "GSM-7" else "UCS-2 characters"
    plural = "segment" if measured.segments == 1 else "segments"
    return f"{measured.encoding}, {measured.segments} {plural} ({measured.length} {unit})"


def register(sub: Any) -> Any:
    """Add ``tenant`` and its commands; returns its subparsers so other modules can add more."""
    tenant: Any = sub.add_parser("tenant", help="manage tenants").add_subparsers(dest="action", required=True)
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
    create.add_argument(
        "--max-segments", type=int, default=DEFAULT_MAX_SEGMENTS, help="SMS segments per reminder, 1-10 (default 3)"
    )
    create.add_argument(
        "--date-style", choices=DATE_STYLES, default=DEFAULT_DATE_STYLE, help="how {expires_on} is written (CLDR)"
    )
    create.add_argument(
        "--normalize-text", action="store_true", help="normalise the tenant's own text to GSM-7 (curly quotes...)"
    )
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
    template = tenant.add_parser(
        "template", help="save an SMS template (SLUG TEXT), or preview them all (preview SLUG)"
    )
    template.add_argument("slug", help="the tenant, or 'preview'")
    template.add_argument("text", nargs="?", help="the template; with preview: the tenant")
    template.add_argument("--window", type=int, help="only for this window (days)")
    template.add_argument("--locale", help="only for this locale")
    template.add_argument(
        "--customer-locale", dest="locale_list", action="append", help="preview: also as a customer of this locale"
    )
    template.add_argument("--json", action="store_true", help="preview: as JSON")
    template.set_defaults(handler=cmd_tenant_template)

    return tenant
