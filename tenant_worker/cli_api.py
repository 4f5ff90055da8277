"""``tenant-worker api``: serve the HTTP control plane with uvicorn, and ``tenant-worker api-keys``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tenant_worker.bootstrap import Services
from tenant_worker.cli_common import print_result
from tenant_worker.services import api_keys


def cmd_api(args: argparse.Namespace, services: Services) -> int:
    """Serve the API until SIGTERM/Ctrl+C (uvicorn finishes the requests in flight first)."""
    import uvicorn

    from tenant_worker.adapters.sentry import init_sentry
    from tenant_worker.api.app import create_app

    settings = services.settings
    settings.require_credentials()
    init_sentry(settings)  # unexpected errors (500s) reach Sentry, without headers or bodies
    if not settings.admin_api_keys:
        print("warning: no ADMIN_API_KEYS(_FILE): only tenant keys can call the API", file=sys.stderr)
    host, port = args.host or settings.api_host, args.port or settings.api_port
    # One process serves the app built here; several each build their own after the fork.
    app: Any = create_app(services) if args.workers == 1 else "tenant_worker.api.main:build"
    uvicorn.run(
        app, host=host, port=port, workers=args.workers, factory=args.workers > 1,
        proxy_headers=args.proxy_headers, log_level=args.log_level, server_header=False,
    )  # fmt: skip
    return 0


def cmd_keys_create(args: argparse.Namespace, services: Services) -> int:
    """Create a key and print it: the only time it is shown."""
    created = api_keys.create_key(services.uow, services.api_keys, args.slug, args.name)
    data = {"key": created.secret, **api_keys.KeyListing(args.slug, created.key).as_dict()}
    note = f"API key {created.key.prefix} for {args.slug}: store it now, it is not shown again"
    print_result(data, args.json, lambda: print(f"{created.secret}\n{note}"))
    return 0


def cmd_keys_list(args: argparse.Namespace, services: Services) -> int:
    """List keys (never their secrets: only hashes are stored)."""
    rows = [k.as_dict() for k in api_keys.list_keys(services.uow, services.api_keys, args.slug)]

    def table() -> None:
        print(f"{'PREFIX':<14} {'TENANT':<24} {'STATE':<8} {'LAST USED':<26} NAME")
        for r in rows:
            state = "active" if r["active"] else "revoked"
            print(f"{r['prefix']:<14} {r['tenant']:<24} {state:<8} {r['last_used_at'] or '-':<26} {r['name']}")

    print_result(rows, args.json, table)
    return 0


def cmd_keys_revoke(args: argparse.Namespace, services: Services) -> int:
    """Revoke a key by its prefix: requests with it are refused from now on."""
    revoked = api_keys.revoke_key(services.uow, services.api_keys, args.prefix, services.clock)
    print(f"revoked API key {revoked.key.prefix} of {revoked.slug}")
    return 0


def register(sub: Any) -> None:
    """Add ``api`` and ``api-keys``."""
    api = sub.add_parser("api", help="serve the HTTP API (uvicorn)")
    api.add_argument("--host", help="address to listen on (default: API_HOST, 127.0.0.1)")
    api.add_argument("--port", type=int, help="port (default: API_PORT, 8080)")
    api.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    api.add_argument(
        "--proxy-headers", action="store_true", help="trust X-Forwarded-* from the proxy in front (FORWARDED_ALLOW_IPS)"
    )
    api.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    api.set_defaults(handler=cmd_api)
    keys: Any = sub.add_parser("api-keys", help="tenant API keys").add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="create a key for a tenant (shown once)")
    create.add_argument("slug")
    create.add_argument("--name", default="", help="what the key is for, e.g. billing-prod")
    create.add_argument("--json", action="store_true")
    create.set_defaults(handler=cmd_keys_create)
    listing = keys.add_parser("list", help="list keys (of one tenant)")
    listing.add_argument("slug", nargs="?")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_keys_list)
    revoke = keys.add_parser("revoke", help="revoke a key by its prefix (twk_XXXXXXXX)")
    revoke.add_argument("prefix")
    revoke.set_defaults(handler=cmd_keys_revoke)
