"""What a live worker or beat process says about itself, and the port that lists those reports."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Heartbeat:
    """One process's last report: a worker (``kind="worker"``, the queues it consumes) or a beat
    (``kind="beat"``, ``name`` is its lock token and ``leading`` whether it holds the lock)."""

    kind: str
    name: str
    host: str
    pid: int
    at: dt.datetime
    queues: tuple[str, ...] = field(default_factory=tuple)
    leading: bool = False


class Heartbeats(Protocol):
    """The reports of the processes alive now (a report expires when its process stops writing)."""

    def live(self) -> Sequence[Heartbeat]:
        """Every unexpired report."""
        ...


def consumed_queues(beats: Sequence[Heartbeat]) -> set[str]:
    """The queues some live worker consumes."""
    return {queue for beat in beats if beat.kind == "worker" for queue in beat.queues}


@dataclass(frozen=True)
class LedgerHealth:
    """What the ledger says about the pipeline: when the oldest pending reminder of each queue was
    claimed, and the rows the recovery tick should have settled (``stranded``: still ``sending`` past
    STALE_SENDING_SECONDS, or published past REQUEUE_AFTER_SECONDS and not taken) or could not
    (``unknown`` in the last 24 h: may or may not have reached the customer)."""

    oldest_pending: dict[str, dt.datetime]
    stranded_sending: int
    stranded_published: int
    unknown_last_day: int


class LedgerHealthReader(Protocol):
    """Reads :class:`LedgerHealth`."""

    def read(self, now: dt.datetime) -> LedgerHealth:
        """The figures at ``now``."""
        ...
