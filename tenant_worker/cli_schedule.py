"""``tenant-worker schedule ...``: thin wrappers over :mod:`tenant_worker.schedules`."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any

from tenant_worker.bootstrap import Services
from tenant_worker.domain.localtime import parse_hhmm


def _out(data: Any, as_json: bool, text: str) -> int:
    print(json.dumps(data, indent=2, default=str) if as_json else text)
    return 0


def _line(s: dict[str, Any]) -> str:
    nxt = s["next_run_local"] or "-"
    drift = "" if s["in_sync"] else "  (differs from the database: run `tenant-worker schedule sync`)"
    return f"{s['tenant']:<24} {s['state']:<8} {s['send_time']} {s['timezone']:<24} next {nxt}{drift}"


def _detail(s: dict[str, Any]) -> str:
    return "\n".join(f"{key:<16} {value if value is not None else '-'}" for key, value in s.items())


def _instant(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO-8601 instant like 2026-03-28T00:00Z") from None


def _time(text: str) -> dt.time:
    try:
        return parse_hhmm(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_list(args: argparse.Namespace, services: Services) -> int:
    """List every tenant's schedule."""
    rows = services.schedules().list_all()
    header = f"{'TENANT':<24} {'STATE':<8} TIME  {'TIMEZONE':<24} NEXT RUN (LOCAL)"
    return _out(rows, args.json, "\n".join([header, *map(_line, rows)]))


def cmd_show(args: argparse.Namespace, services: Services) -> int:
    """Show one schedule, or its next N runs after an instant."""
    service = services.schedules()
    if args.start is not None:
        runs = service.upcoming(args.slug, args.start, args.count)
        return _out(runs, args.json, "\n".join(f"{r['utc']}  local {r['local']}" for r in runs))
    data = service.show(args.slug)
    return _out(data, args.json, _detail(data))


def cmd_set(args: argparse.Namespace, services: Services) -> int:
    """Change a tenant's send time (and zone)."""
    data = services.schedules().set_time(args.slug, args.time, args.timezone)
    return _out(data, args.json, _detail(data))


def _state_command(action: str) -> Any:
    def handler(args: argparse.Namespace, services: Services) -> int:
        data = getattr(services.schedules(), action)(args.slug)
        return _out(data, args.json, _detail(data))

    handler.__doc__ = f"{action.capitalize()} a tenant's schedule."
    return handler


def cmd_run_now(args: argparse.Namespace, services: Services) -> int:
    """Publish the tenant's sweep now."""
    task_id = services.schedules().run_now(args.slug)
    return _out({"tenant": args.slug, "task_id": task_id}, args.json, f"sweep of {args.slug} published ({task_id})")


def cmd_sync(args: argparse.Namespace, services: Services) -> int:
    """Reconcile the tenants table with RedBeat."""
    report = services.schedules().sync()
    text = (
        f"{len(report.created)} created, {len(report.updated)} updated, "
        f"{len(report.removed)} removed, {report.unchanged} unchanged"
    )
    return _out(report.as_dict(), args.json, text)


def register(sub: Any) -> None:
    """Add the ``schedule`` command tree to the top-level subparsers."""
    group = sub.add_parser("schedule", help="tenants' daily sweep schedules (RedBeat)")
    actions = group.add_subparsers(dest="action", required=True)

    def add(name: str, handler: Any, help_text: str, slug: bool = True) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(name, help=help_text)
        if slug:
            parser.add_argument("slug")
        parser.add_argument("--json", action="store_true")
        parser.set_defaults(handler=handler)
        return parser

    add("list", cmd_list, "every tenant's schedule", slug=False)
    show = add("show", cmd_show, "next run (UTC and local) and last run; --from/--count list future runs")
    show.add_argument("--from", dest="start", type=_instant, help="ISO-8601 instant; without offset: tenant-local")
    show.add_argument("--count", type=int, default=5)
    setter = add("set", cmd_set, "change the local send time (and time zone)")
    setter.add_argument("--time", type=_time, required=True, help="HH:MM on the tenant's clock")
    setter.add_argument("--timezone", help="IANA zone; changes the tenant's zone")
    add("pause", _state_command("pause"), "stop sweeps, keep data and schedule")
    add("resume", _state_command("resume"), "sweep again from the next send time")
    add("remove", _state_command("remove"), "delete the schedule from Redis (no keys left)")
    add("run-now", cmd_run_now, "publish the tenant's sweep now (quiet hours still apply)")
    add("sync", cmd_sync, "create missing, fix drifted and remove orphaned entries", slug=False)
