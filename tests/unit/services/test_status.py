"""``services.status.system_status`` on fakes: beat leader and standby from the lock and heartbeats,
pools grouped by the queues they consume, unconsumed queues, late sweeps from the schedule store."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from tenant_worker import constants
from tenant_worker.domain.heartbeat import Heartbeat, LedgerHealth
from tenant_worker.services.schedules import ScheduleService
from tenant_worker.services.status import StatusSources, system_status
from tests.fakes import FakeClock, FakeScheduleStore, FakeStorage


class Beats:
    def __init__(self, beats: list[Heartbeat]) -> None:
        self.beats = beats

    def live(self) -> list[Heartbeat]:
        return self.beats


class Ledger:
    def __init__(self, health: LedgerHealth) -> None:
        self.health = health

    def read(self, now: dt.datetime) -> LedgerHealth:
        return self.health


def test_status_reports_beat_pools_queues_and_late_sweeps(storage: FakeStorage, clock: FakeClock, new_tenant) -> None:
    now = clock.now()
    on_time, late = new_tenant(), new_tenant()
    store = FakeScheduleStore()
    schedules = ScheduleService(storage, store, clock)
    with storage() as tx:
        for tenant in (on_time, late):
            schedules.apply(tx.catalog.find_tenant(tenant.slug))
    store.entries[late.slug] = replace(store.entries[late.slug], due_at=now - dt.timedelta(hours=2))

    shard = on_time.queue
    beat = lambda kind, name, **kw: Heartbeat(kind, name, "h", 1, now - dt.timedelta(seconds=3), **kw)  # noqa: E731
    beats = [
        beat("beat", "h:1:aaa", leading=True),
        beat("beat", "h:2:bbb"),
        beat("worker", "w1@h", queues=(shard,)),
        beat("worker", "w2@h", queues=(shard,)),
        beat("worker", "c@h", queues=constants.CONTROL_POOL_QUEUES),
    ]
    health = LedgerHealth({shard: now - dt.timedelta(minutes=4)}, 2, 1, 5)
    src = StatusSources(
        uow=storage, heartbeats=Beats(beats), leader=lambda: "h:1:aaa",
        depths=lambda queues: {q: 7 if q == shard else 0 for q in queues},
        ledger=Ledger(health), schedules=schedules, clock=clock, shard_count=16,
    )  # fmt: skip

    data = system_status(src)

    assert data["beat"]["leader"] == "h:1:aaa" and data["beat"]["leader_alive"]
    assert [s["name"] for s in data["beat"]["standby"]] == ["h:2:bbb"]
    pools = {tuple(p["queues"]): [w["name"] for w in p["workers"]] for p in data["pools"]}
    assert pools == {(shard,): ["w1@h", "w2@h"], tuple(constants.CONTROL_POOL_QUEUES): ["c@h"]}
    row = next(q for q in data["queues"] if q["queue"] == shard)
    assert (row["depth"], row["oldest_pending_seconds"], row["consumed"]) == (7, 240.0, True)
    # A queue with tenants and no live worker is listed; the consumed ones and empty shards are not.
    assert data["unconsumed"] == sorted({late.queue} - {shard})
    assert data["oldest_pending_seconds"] == 240.0
    assert (data["stranded"], data["unknown_last_24h"]) == ({"sending": 2, "published": 1}, 5)
    assert [x["tenant"] for x in data["late_sweeps"]] == [late.slug]
