"""One line and a documented exit status for every way a ``tenant-worker`` command can fail.

Before a command runs, :func:`preflight` checks what it needs - the database, at the newest migration,
and Redis unless the command works without it - so a missing service is reported before anything is
half-done. Whatever still escapes a command (a service that fails half-way) is turned into one line by
:func:`explain`, which asks the same checks what exactly is wrong now. A traceback is printed only with
``--debug``, and like every line here it goes through the same redaction as the logs.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable

from kombu.exceptions import KombuError
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from tenant_worker.adapters.db import check_database
from tenant_worker.adapters.redis_check import check_redis, describe_redis
from tenant_worker.bootstrap import Services, bootstrap
from tenant_worker.config import ConfigurationError, Settings, load_settings, redact_text, redact_url, secrets_of
from tenant_worker.domain.model import ValidationError
from tenant_worker.domain.ports import EnqueueError
from tenant_worker.domain.storage import StorageUnavailable
from tenant_worker.domain.templates import TemplateError
from tenant_worker.domain.windows import WindowsError
from tenant_worker.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_UNAVAILABLE

# Commands that never touch Redis, or do without it (`tenant create` warns and leaves the tenant's
# schedule to beat's next sync). Every other command publishes tasks or reads RedBeat.
WITHOUT_REDIS = {
    ("db", "upgrade"),
    ("tenant", "list"),
    ("tenant", "show"),
    ("tenant", "create"),
    ("tenant", "template"),
    ("customers", "import"),
    ("reminders", "list"),
    ("sweep", None),  # with --dry-run only; see needs_redis
    ("customers", "show"),
    ("customers", "remove"),
    ("customers", "opt-out"),
    ("customers", "erase"),
    ("ledger", "prune"),
    ("api-keys", "create"),
    ("api-keys", "list"),
    ("api-keys", "revoke"),
    ("pools", "render"),
}
# `worker` and `beat` check their services themselves (production's credential rule comes first).
# `probe` reports on the services itself: a liveness probe must not fail because Redis is down.
SELF_CHECKED = {"worker", "beat", "probe"}
DEBUG_HINT = "rerun with --debug for the traceback"


def needs_redis(args: argparse.Namespace) -> bool:
    """Whether the command about to run needs Redis."""
    key = (args.command, getattr(args, "action", None))
    if key == ("sweep", None):
        return not args.dry_run
    return key not in WITHOUT_REDIS


def preflight(args: argparse.Namespace, settings: Settings) -> None:
    """Check the services the command needs; raise the error that explains the first one missing."""
    if args.command in SELF_CHECKED:
        return
    migrating = (args.command, getattr(args, "action", None)) == ("db", "upgrade")
    check_database(settings.database_url, migrated=not migrating)
    if needs_redis(args):
        check_redis(settings.redis_url, settings.redis_sentinel)


def run(handler: Callable[[argparse.Namespace, Services], int], args: argparse.Namespace, debug: bool = False) -> int:
    """Run a command after its pre-flight checks, on ports from the bootstrap; any error becomes one
    line on stderr and its status."""
    settings: Settings | None = None
    services: Services | None = None
    try:
        settings = load_settings()
        preflight(args, settings)
        services = bootstrap(settings)
        return handler(args, services)
    except (Exception, KeyboardInterrupt) as exc:
        status, line = explain(exc, settings)
        secrets = secrets_of(settings) if settings else []
        if debug:
            print(redact_text("".join(traceback.format_exception(exc)), secrets), file=sys.stderr, end="")
        print(redact_text(line, secrets), file=sys.stderr)
        return status
    finally:
        if services is not None:
            services.close()


def explain(exc: BaseException, settings: Settings | None) -> tuple[int, str]:
    """The exit status and the message for ``exc``: what is wrong and what to do about it."""
    if isinstance(exc, ValidationError | TemplateError | WindowsError):
        problems = getattr(exc, "problems", None) or [str(exc)]
        return EXIT_INVALID, "error: " + "\n  ".join(["invalid input:", *problems])
    if isinstance(exc, StorageUnavailable) and exc.__cause__ is not None:
        # The storage adapter's translation of a driver error: diagnose the driver's own error.
        return explain(exc.__cause__, settings)
    if isinstance(exc, ConfigurationError):
        return getattr(exc, "exit_status", EXIT_INVALID), f"error: {exc}"
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "error: interrupted"
    if isinstance(exc, OSError) and exc.filename:
        return EXIT_INVALID, f"error: {exc.strerror or exc}: {exc.filename}"
    if settings is not None and isinstance(exc, RedisError | KombuError | EnqueueError | OSError):
        url, sentinel = settings.redis_url, settings.redis_sentinel
        return _diagnosed(exc, lambda: check_redis(url, sentinel), f"Redis at {describe_redis(url, sentinel)}")
    if settings is not None and isinstance(exc, SQLAlchemyError):
        where = f"PostgreSQL at {redact_url(settings.database_url)}"
        return _diagnosed(exc, lambda: check_database(settings.database_url, migrated=True), where)
    return EXIT_FAILED, f"error: unexpected {_summary(exc)}; {DEBUG_HINT}"


def _diagnosed(exc: BaseException, check: Callable[[], None], where: str) -> tuple[int, str]:
    """Ask the service's check what is wrong now; if it finds nothing, the service failed half-way."""
    try:
        check()
    except ConfigurationError as problem:
        return explain(problem, None)
    if isinstance(exc, DBAPIError) and not isinstance(exc, OperationalError):
        return EXIT_FAILED, f"error: {where} refused a statement: {_summary(exc)}; {DEBUG_HINT}"
    return EXIT_UNAVAILABLE, f"error: {where} failed during the command ({_summary(exc)}); it answers now: run it again"


def _summary(exc: BaseException) -> str:
    """The exception's type and the first line of its message."""
    first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {first[0]}" if first else type(exc).__name__
