"""Heartbeats in Redis (for ``tenant-worker status``) and in a local file (for the k8s exec probes).

A worker or beat runs :class:`HeartbeatThread`: every ``HEARTBEAT_INTERVAL`` seconds it touches the
process's heartbeat file and writes its Redis key with a TTL. The file is the liveness signal: a probe
reads its age, so a probe costs no broadcast ``inspect ping`` through the broker and does not fail while
Redis is down (workers ride outages out). The key lets the status command list live processes with one
SCAN and MGET; a process that dies simply stops renewing it and drops out within ``HEARTBEAT_TTL``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import redis

from tenant_worker import constants
from tenant_worker.domain.heartbeat import Heartbeat

log = logging.getLogger(__name__)


def heartbeat_key(kind: str, name: str) -> str:
    """The Redis key of one process's heartbeat."""
    return f"{constants.HEARTBEAT_PREFIX}{kind}:{name}"


class RedisHeartbeats:
    """Reads and writes heartbeats as JSON strings with a TTL."""

    def __init__(self, client: redis.Redis, ttl: int = constants.HEARTBEAT_TTL) -> None:
        self.client, self.ttl = client, ttl

    def write(self, beat: Heartbeat) -> None:
        """Store ``beat`` until it expires."""
        value = {
            "kind": beat.kind,
            "name": beat.name,
            "host": beat.host,
            "pid": beat.pid,
            "at": beat.at.isoformat(),
            "queues": list(beat.queues),
            "leading": beat.leading,
        }
        self.client.set(heartbeat_key(beat.kind, beat.name), json.dumps(value), ex=self.ttl)

    def remove(self, kind: str, name: str) -> None:
        """Forget a process that stops cleanly (status stops listing it at once)."""
        self.client.delete(heartbeat_key(kind, name))

    def live(self) -> Sequence[Heartbeat]:
        """Every unexpired heartbeat, sorted by kind and name."""
        keys = list(self.client.scan_iter(match=constants.HEARTBEAT_PREFIX + "*", count=500))
        values = self.client.mget(keys) if keys else []
        beats = []
        for raw in values:
            if raw is None:  # expired between SCAN and MGET
                continue
            data: dict[str, Any] = json.loads(raw)
            beats.append(
                Heartbeat(
                    kind=data["kind"],
                    name=data["name"],
                    host=data["host"],
                    pid=int(data["pid"]),
                    at=dt.datetime.fromisoformat(data["at"]),
                    queues=tuple(data.get("queues", ())),
                    leading=bool(data.get("leading", False)),
                )
            )
        return sorted(beats, key=lambda b: (b.kind, b.name))


def touch(path: str) -> None:
    """Set the heartbeat file's modification time to now (creating it)."""
    Path(path).touch()


def file_age(path: str) -> float | None:
    """Seconds since the heartbeat file was touched, or None when it does not exist."""
    try:
        return max(0.0, time.time() - os.stat(path).st_mtime)
    except FileNotFoundError:
        return None


class HeartbeatThread(threading.Thread):
    """Touches ``path`` and writes ``make()``'s heartbeat every ``interval`` seconds until :meth:`stop`.

    A Redis error is logged once per outage and the file is still touched: the process is alive and
    its own reconnect logic deals with the outage. ``alive`` (default: always) lets the process say its
    main loop is stuck: the file is then left alone, so the liveness probe fails and the pod restarts.
    """

    def __init__(
        self,
        store: RedisHeartbeats,
        make: Callable[[], Heartbeat],
        path: str,
        interval: float = constants.HEARTBEAT_INTERVAL,
        alive: Callable[[], bool] = lambda: True,
    ) -> None:
        super().__init__(name="heartbeat", daemon=True)
        self.store, self.make, self.path, self.interval, self.alive = store, make, path, interval, alive
        self._stop_event = threading.Event()
        self._failing = False
        self._last: Heartbeat | None = None

    def beat_once(self) -> None:
        """One heartbeat: the file (while the main loop is alive), then the key."""
        if not self.alive():
            log.warning("heartbeat: the main loop is stuck; not touching %s", self.path)
            return
        try:
            touch(self.path)
        except OSError as exc:
            log.warning("heartbeat: cannot touch %s: %s", self.path, exc)
        try:
            self._last = self.make()
            self.store.write(self._last)
            self._failing = False
        except redis.RedisError as exc:
            if not self._failing:
                log.warning("heartbeat: cannot write to Redis (%s); retrying", type(exc).__name__)
            self._failing = True

    def run(self) -> None:
        """Beat until stopped."""
        while not self._stop_event.is_set():
            self.beat_once()
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        """Stop beating and remove the key and the file (a clean exit is not a dead process)."""
        self._stop_event.set()
        if self._last is not None:
            with contextlib.suppress(redis.RedisError):  # else it expires on its own
                self.store.remove(self._last.kind, self._last.name)
        with contextlib.suppress(OSError):
            os.unlink(self.path)


def process_heartbeat(kind: str, name: str, queues: Sequence[str] = (), leading: bool = False) -> Heartbeat:
    """A heartbeat of this process, now."""
    return Heartbeat(
        kind=kind,
        name=name,
        host=socket.gethostname(),
        pid=os.getpid(),
        at=dt.datetime.now(dt.UTC),
        queues=tuple(sorted(queues)),
        leading=leading,
    )
