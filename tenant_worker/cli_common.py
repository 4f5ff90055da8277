"""Helpers shared by the ``tenant-worker`` command modules."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any


def print_result(data: Any, as_json: bool, table: Callable[[], None]) -> None:
    """Print ``data`` as JSON with ``--json``, else as the command's own text."""
    if as_json:
        print(json.dumps(data, indent=2, default=str))
    else:
        table()


def parsed(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from a parser that raises ``ValueError`` with a readable message."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert
