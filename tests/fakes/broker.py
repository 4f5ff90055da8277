"""In-memory stand-ins for what lives in Redis: the task publisher, the broker-loss marker and the beat
schedule store. The contract suite (tests/contract) runs the same tests on them and on the Celery,
Redis and RedBeat adapters, so a unit test on these fakes sees what production would."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from dataclasses import dataclass, replace

from tenant_worker.domain.localtime import next_local_run
from tenant_worker.domain.ports import EnqueueError, StoredSchedule

# RedBeat's store computes a paused-and-resumed entry's next run from at most this far back
# (adapters.redbeat._LOOKBACK): anything older is simply overdue.
_LOOKBACK = dt.timedelta(days=2)


@dataclass(frozen=True)
class Enqueued:
    """One ``send_reminders`` task the fake queue accepted."""

    tenant_id: int
    reminder_ids: list[int]
    countdown: float
    queue: str | None


class FakeQueue:
    """``domain.ports.ReminderQueue`` that records each task; ``fail(n)`` makes the next ``n``
    publishes (``None``: every one until :meth:`recover`) raise :class:`EnqueueError`, as a dead broker does."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.tasks: list[Enqueued] = []
        self.refused: list[Enqueued] = []
        self._failures: int | None = 0

    def enqueue(
        self, tenant_id: int, reminder_ids: list[int], countdown: float = 0.0, queue: str | None = None
    ) -> None:
        """Record the task, or refuse it while the fake broker is down."""
        task = Enqueued(tenant_id, list(reminder_ids), countdown, queue)
        with self._lock:
            if self._failures is None or self._failures > 0:
                if self._failures is not None:
                    self._failures -= 1
                self.refused.append(task)
                raise EnqueueError("broker at fake://broker unavailable: ConnectionError")
            self.tasks.append(task)

    def fail(self, times: int | None = None) -> None:
        """Refuse the next ``times`` publishes (``None``: all of them until :meth:`recover`)."""
        with self._lock:
            self._failures = times

    def recover(self) -> None:
        """Accept publishes again."""
        with self._lock:
            self._failures = 0

    @property
    def ids(self) -> list[int]:
        """Every reminder id published so far, in order."""
        with self._lock:
            return [i for task in self.tasks for i in task.reminder_ids]

    @property
    def batches(self) -> list[tuple[int, list[int]]]:
        """(tenant id, reminder ids) of each task, in order (as ``tests.conftest.RecordingQueue``)."""
        with self._lock:
            return [(task.tenant_id, list(task.reminder_ids)) for task in self.tasks]


class FakeBrokerMarker:
    """``domain.ports.BrokerMarker``: True on the first check ever and once after each :meth:`lose`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lost = True

    def lost_since_last_check(self) -> bool:
        """Whether the broker lost its data since the previous call."""
        with self._lock:
            lost, self._lost = self._lost, False
            return lost

    def lose(self) -> None:
        """The broker's Redis restarted without its data."""
        with self._lock:
            self._lost = True


class FakeScheduleStore:
    """``domain.ports.ScheduleStore`` in memory, keeping what RedBeat keeps: an entry's last run
    survives updates, a new entry counts as run at ``now``, a paused one has no due time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.entries: dict[str, StoredSchedule] = {}
        self.published: list[tuple[str, str, str]] = []
        self._ids = itertools.count(1)

    def put(self, slug: str, timezone: str, send_time: dt.time, queue: str, enabled: bool, now: dt.datetime) -> None:
        """Create or update the tenant's entry (its last run kept)."""
        with self._lock:
            existing = self.entries.get(slug)
            last_run = existing.last_run_at if existing and existing.last_run_at else now
            due = next_local_run(max(last_run, now - _LOOKBACK), timezone, send_time) if enabled else None
            self.entries[slug] = StoredSchedule(slug, timezone, send_time, queue, enabled, last_run, due)

    def get(self, slug: str) -> StoredSchedule | None:
        """The tenant's entry, or None."""
        with self._lock:
            return self.entries.get(slug)

    def all(self) -> dict[str, StoredSchedule]:
        """Every entry by slug."""
        with self._lock:
            return dict(self.entries)

    def delete(self, slug: str) -> bool:
        """Remove the entry; True if there was one."""
        with self._lock:
            return self.entries.pop(slug, None) is not None

    def publish_sweep(self, slug: str, queue: str) -> str:
        """Record a run-now sweep; returns its made-up task id."""
        with self._lock:
            task_id = f"sweep-{next(self._ids)}"
            self.published.append((slug, queue, task_id))
            return task_id

    def ran(self, slug: str, at: dt.datetime) -> None:
        """What beat does when it sends the entry: its last run is now ``at``, next due recomputed."""
        with self._lock:
            entry = self.entries[slug]
            due = next_local_run(at, entry.timezone, entry.send_time) if entry.enabled else None
            self.entries[slug] = replace(entry, last_run_at=at, due_at=due)
