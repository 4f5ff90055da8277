"""`tenant-worker --version` and every subcommand's `--help`, as a user types them."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tenant_worker import __version__
from tenant_worker.cli import build_parser, main


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every (sub)command of the tree with its parser, depth first."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*path, name))


ALL = [path for path, _ in commands(build_parser())]


def test_version_prints_the_package_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tenant_worker.cli", "--version"], capture_output=True, text=True, timeout=30
    )
    assert (done.returncode, done.stdout.strip()) == (0, f"tenant-worker {__version__}")


@pytest.mark.parametrize("path", ALL, ids=[" ".join(p) or "tenant-worker" for p in ALL])
def test_every_command_help_lists_its_options(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    parser = dict(commands(build_parser()))[path]
    with pytest.raises(SystemExit) as exit_info:
        main([*path, "--help"])
    assert exit_info.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith("usage: tenant-worker")
    for action in parser._actions:
        assert action.help != argparse.SUPPRESS, f"{path}: {action.dest} is hidden"
        for option in action.option_strings:
            assert option in shown, f"`tenant-worker {' '.join(path)} --help` does not list {option}"


def test_worker_help_shows_the_queue_selection_and_where_celery_options_go(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["worker", "--help"])
    shown = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for option in ("--shards", "--queues", "-Q", "--tenant", "celery -A tenant_worker.celery_app worker --help"):
        assert option in shown
