"""``tenant-worker status``, ``probe`` and ``pools render``: thin wrappers over the operations services."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tenant_worker.adapters.db import check_database
from tenant_worker.adapters.heartbeat import file_age
from tenant_worker.adapters.redis_check import check_redis
from tenant_worker.bootstrap import Services
from tenant_worker.cli_common import print_result
from tenant_worker.services import pool_render, probes, status


def _table(data: dict[str, Any]) -> None:
    beat = data["beat"]
    leader = beat["leader"] or "none"
    print(f"beat leader   {leader}" + ("" if beat["leader_alive"] or not beat["leader"] else "  (no heartbeat!)"))
    print(f"beat standby  {', '.join(s['name'] for s in beat['standby']) or 'none'}")
    print("pools:")
    for pool in data["pools"] or [{"queues": ["(no live worker)"], "workers": []}]:
        names = ", ".join(w["name"] for w in pool["workers"])
        print(f"  {len(pool['workers'])} x [{', '.join(pool['queues'])}]  {names}")
    print(f"{'QUEUE':<40} {'KIND':<10} {'TENANTS':>7} {'DEPTH':>8} {'OLDEST':>8}  CONSUMED")
    for q in data["queues"]:
        oldest = "-" if q["oldest_pending_seconds"] is None else f"{q['oldest_pending_seconds']:.0f}s"
        row = f"{q['queue']:<40} {q['kind']:<10} {q['tenants']:>7} {q['depth']:>8} {oldest:>8}"
        print(f"{row}  {'yes' if q['consumed'] else 'NO'}")
    stranded = data["stranded"]
    print(f"oldest pending {data['oldest_pending_seconds']:.0f} s")
    print(f"stranded now   {stranded['sending']} sending, {stranded['published']} published and not taken")
    print(f"unknown (24 h) {data['unknown_last_24h']}")
    late = data["late_sweeps"]
    print("late sweeps    " + (", ".join(f"{x['tenant']} ({x['reason']} since {x['since']})" for x in late) or "none"))
    if data["unconsumed"]:
        print(f"WARNING: no live worker consumes {', '.join(data['unconsumed'])}")


def cmd_status(args: argparse.Namespace, services: Services) -> int:
    """One screen: beat, pools, queues, ledger figures and late sweeps."""
    data = status.system_status(services.status_sources())
    print_result(data, args.json, lambda: _table(data))
    return 0


def cmd_probe(args: argparse.Namespace, services: Services) -> int:
    """Exit 0 when this pod's worker or beat is live (``--ready``: and Redis and PostgreSQL answer)."""
    settings = services.settings
    checks = {}
    if args.ready:
        checks = {
            "redis": lambda: check_redis(settings.redis_url, settings.redis_sentinel, timeout=3.0),
            "database": lambda: check_database(settings.database_url),
        }
    problems = probes.probe(args.kind, file_age(settings.heartbeat_file), checks)
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


def cmd_pools_render(args: argparse.Namespace, services: Services) -> int:
    """Write the compose override and the Kubernetes objects of every dedicated tenant's pool."""
    with services.uow() as tx:
        slugs = pool_render.dedicated_slugs(tx.catalog.tenant_queues())
    files = pool_render.render(slugs)
    if args.out is None:
        for name, text in files.items():
            print(f"# {name}\n{text}")
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    print(f"{len(slugs)} dedicated pool(s) written to {out}: {', '.join(files)}")
    return 0


def register(sub: Any) -> None:
    """Add ``status``, ``probe`` and ``pools`` to the top-level subparsers."""
    st = sub.add_parser("status", help="beat, worker pools, queues, stranded reminders and late sweeps")
    st.add_argument("--json", action="store_true")
    st.set_defaults(handler=cmd_status)

    pr = sub.add_parser("probe", help="Kubernetes exec probe of this pod's worker or beat (no broker ping)")
    pr.add_argument("kind", choices=["worker", "beat"])
    pr.add_argument("--ready", action="store_true", help="also require Redis and PostgreSQL to answer")
    pr.set_defaults(handler=cmd_probe)

    pools = sub.add_parser("pools", help="dedicated tenants' worker pools").add_subparsers(dest="action", required=True)
    render = pools.add_parser("render", help="compose override and k8s Deployment + ScaledObject per dedicated tenant")
    render.add_argument("--out", help="directory to write the files to (default: print them)")
    render.set_defaults(handler=cmd_pools_render)
