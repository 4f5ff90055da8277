"""``tenant-worker status``: one look at the whole deployment, from what is cheap to read.

Nothing here asks a process anything: workers and beats publish heartbeats (adapters/heartbeat.py),
the queues are Redis lists, the ledger figures are index probes, and the schedules are RedBeat's
entries. A process that died drops out of the list within the heartbeat TTL.

A tenant's sweep is *late* when its schedule is active and either its next run is more than
``late_margin`` in the past (beat is not sending it: no leader, or beat is stuck) or its last run is
more than a day plus ``late_margin`` ago (a daily entry that stopped firing). A tenant that never ran
is late only by the first rule.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tenant_worker.domain.heartbeat import Heartbeat, Heartbeats, LedgerHealthReader, consumed_queues
from tenant_worker.domain.ports import Clock
from tenant_worker.domain.storage import UnitOfWorkFactory
from tenant_worker.services import sharding
from tenant_worker.services.schedules import ScheduleService

LATE_MARGIN = dt.timedelta(hours=1)


@dataclass(frozen=True)
class StatusSources:
    """The ports the status reads (``leader`` returns the beat lock's holder, None when free)."""

    uow: UnitOfWorkFactory
    heartbeats: Heartbeats
    leader: Callable[[], str | None]
    depths: Callable[[Sequence[str]], dict[str, int]]
    ledger: LedgerHealthReader
    schedules: ScheduleService
    clock: Clock
    shard_count: int


def _age(now: dt.datetime, at: dt.datetime | None) -> float | None:
    return None if at is None else round(max(0.0, (now - at).total_seconds()), 1)


def _parse(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value)


def late_sweeps(schedules: Sequence[dict[str, Any]], now: dt.datetime, margin: dt.timedelta) -> list[dict[str, Any]]:
    """The active schedules whose sweep is late (see the module docs), with why."""
    late = []
    for entry in schedules:
        if entry["state"] != "active":
            continue
        next_run, last_run = _parse(entry["next_run_utc"]), _parse(entry["last_run_utc"])
        if next_run is not None and now - next_run > margin:
            late.append({"tenant": entry["tenant"], "reason": "overdue", "since": entry["next_run_utc"]})
        elif last_run is not None and now - last_run > dt.timedelta(days=1) + margin:
            late.append({"tenant": entry["tenant"], "reason": "no run for a day", "since": entry["last_run_utc"]})
    return late


def _beats(beats: Sequence[Heartbeat], holder: str | None, now: dt.datetime) -> dict[str, Any]:
    processes = [b for b in beats if b.kind == "beat"]
    standby = [{"name": b.name, "host": b.host, "age_seconds": _age(now, b.at)} for b in processes if b.name != holder]
    alive = any(b.name == holder for b in processes)
    return {"leader": holder, "leader_alive": alive, "standby": standby}


def _pools(beats: Sequence[Heartbeat], now: dt.datetime) -> list[dict[str, Any]]:
    """Live workers grouped by the set of queues they consume (one group per pool)."""
    pools: dict[tuple[str, ...], list[Heartbeat]] = {}
    for beat in beats:
        if beat.kind == "worker":
            pools.setdefault(beat.queues, []).append(beat)
    return [
        {
            "queues": list(queues),
            "workers": [{"name": w.name, "host": w.host, "age_seconds": _age(now, w.at)} for w in workers],
        }
        for queues, workers in sorted(pools.items())
    ]


def system_status(src: StatusSources, late_margin: dt.timedelta = LATE_MARGIN) -> dict[str, Any]:
    """The status as a JSON-ready dict: beat, pools, queues, ledger figures and late sweeps."""
    now = src.clock.now()
    beats = list(src.heartbeats.live())
    with src.uow() as tx:
        infos = sharding.known_queues(tx, src.shard_count)
    depths = src.depths([info.name for info in infos])
    health = src.ledger.read(now)
    consumed = consumed_queues(beats)
    queues = [
        {
            "queue": info.name,
            "kind": info.kind,
            "tenants": len(info.tenants),
            "depth": depths[info.name],
            "oldest_pending_seconds": _age(now, health.oldest_pending.get(info.name)),
            "consumed": info.name in consumed,
        }
        for info in infos
    ]
    return {
        "at": now.isoformat(),
        "beat": _beats(beats, src.leader(), now),
        "pools": _pools(beats, now),
        "queues": queues,
        # Queues with work or tenants and no live worker: their reminders wait until a pool consumes them.
        "unconsumed": [q["queue"] for q in queues if not q["consumed"] and (q["depth"] or q["tenants"])],
        "oldest_pending_seconds": max((q["oldest_pending_seconds"] or 0.0 for q in queues), default=0.0),
        "stranded": {"sending": health.stranded_sending, "published": health.stranded_published},
        "unknown_last_24h": health.unknown_last_day,
        "late_sweeps": late_sweeps(src.schedules.list_all(), now, late_margin),
    }
