"""The pure rules of ``tenant-worker status`` and ``probe``: late sweeps, probe verdicts, and the
heartbeat thread leaving the file alone once the main loop is stuck."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from tenant_worker.adapters.heartbeat import HeartbeatThread, file_age, process_heartbeat
from tenant_worker.domain.heartbeat import Heartbeat
from tenant_worker.services.probes import MAX_AGE_SECONDS, probe
from tenant_worker.services.status import LATE_MARGIN, late_sweeps

NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)


def entry(state: str = "active", next_run: dt.datetime | None = None, last_run: dt.datetime | None = None) -> dict:
    iso = lambda t: None if t is None else t.isoformat()  # noqa: E731
    return {"tenant": "t", "state": state, "next_run_utc": iso(next_run), "last_run_utc": iso(last_run)}


@pytest.mark.parametrize(
    ("schedule", "reason"),
    [
        (entry(next_run=NOW + dt.timedelta(hours=3), last_run=NOW - dt.timedelta(hours=21)), None),
        (entry(next_run=NOW - dt.timedelta(minutes=30), last_run=NOW - dt.timedelta(hours=24)), None),
        (entry(next_run=NOW - LATE_MARGIN - dt.timedelta(seconds=1)), "overdue"),
        (entry(next_run=None, last_run=NOW - dt.timedelta(days=1) - LATE_MARGIN - dt.timedelta(1)), "no run for a day"),
        (entry(state="paused", next_run=NOW - dt.timedelta(days=3)), None),
        (entry(next_run=None, last_run=None), None),
    ],
    ids=["on time", "within the margin", "overdue", "stopped firing", "paused", "never scheduled"],
)
def test_late_sweeps(schedule: dict, reason: str | None) -> None:
    late = late_sweeps([schedule], NOW, LATE_MARGIN)
    assert [x["reason"] for x in late] == ([reason] if reason else [])


def failing() -> None:
    raise ConnectionError("refused")


def test_probe_verdicts() -> None:
    assert probe("worker", 1.0, {}) == []
    assert probe("worker", None, {}) == ["worker: no heartbeat yet (not started, or stopped)"]
    assert "more than" in probe("beat", MAX_AGE_SECONDS + 1, {})[0]
    assert probe("worker", 1.0, {"redis": failing, "database": lambda: None}) == ["redis: refused"]


class Store:
    def __init__(self) -> None:
        self.written: list[Heartbeat] = []

    def write(self, beat: Heartbeat) -> None:
        self.written.append(beat)

    def remove(self, kind: str, name: str) -> None:
        self.written = [b for b in self.written if (b.kind, b.name) != (kind, name)]


def test_a_stuck_main_loop_stops_touching_the_heartbeat_file(tmp_path: Path) -> None:
    path = str(tmp_path / "hb")
    stuck = [False]
    store = Store()
    thread = HeartbeatThread(store, lambda: process_heartbeat("beat", "tok"), path, alive=lambda: not stuck[0])  # type: ignore[arg-type]
    thread.beat_once()
    assert file_age(path) is not None and len(store.written) == 1
    os.utime(path, (0, 0))
    stuck[0] = True
    thread.beat_once()
    assert file_age(path) > MAX_AGE_SECONDS  # type: ignore[operator]
    thread.stop()
    assert file_age(path) is None and store.written == []
