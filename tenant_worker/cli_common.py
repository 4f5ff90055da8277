"""Helpers shared by the ``tenant-worker`` command modules."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from tenant_worker.config import ConfigurationError


def print_result(data: Any, as_json: bool, table: Callable[[], None]) -> None:
    """Print ``data`` as JSON with ``--json``, else as the command's own text."""
    if as_json:
        print(json.dumps(data, indent=2, default=str))
    else:
        table()


def confirmed(yes: bool, question: str, refusal: str) -> bool:
    """Whether a destructive command may go ahead: ``--yes``, or "y" at a prompt on a terminal. With
    neither, :class:`ConfigurationError` with ``refusal`` (status 2): a script must say ``--yes``."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise ConfigurationError(f"{refusal}: confirm with --yes (no terminal to ask)")
    if input(f"{question} [y/N] ").strip().lower() in ("y", "yes"):
        return True
    print("nothing changed")
    return False


def parsed(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from a parser that raises ``ValueError`` with a readable message."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def run_celery(app_path: str, argv: Sequence[str]) -> int:
    """Run ``celery --app app_path <argv>`` in this process and return the status Celery ends it with.

    Not ``app.worker_main()`` or ``app.start()``: they run Celery's click command in non-standalone
    mode, where click *returns* the status passed to ``ctx.exit()``, and ``app.start()`` drops it; a
    worker that stopped on an unrecoverable error exited 0 and its supervisor saw a clean stop.
    In standalone mode click ends with ``SystemExit(status)`` instead, for usage errors too (status 2
    with click's one-line message rather than a traceback).
    """
    from celery.bin.celery import celery

    try:
        celery.main(args=["--app", app_path, *argv], prog_name="celery", standalone_mode=True)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    return 0
