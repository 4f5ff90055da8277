"""RedBeat: tenant-local schedules that survive Redis, the leader lock, and a store for entries.

RedBeat serialises an entry's schedule with its own JSON encoder, which knows ``crontab`` (stored
without a zone, so evaluated in UTC here), ``rrule`` (whose ``dtstart`` zone is reduced to a fixed
offset) and intervals; any other ``celery.schedules.schedule`` subclass is silently saved as a plain
interval. So a tenant's "10:00 Europe/Berlin" would drift by an hour at the next DST change. Here
:class:`TenantLocalSchedule` is encoded as ``{"__type__": "tenant_local", "timezone": ..., "time":
...}`` by an encoder/decoder pair that extend RedBeat's, used by :class:`TenantScheduleEntry`
(RedBeat's entry with only its codec swapped) and the scheduler (``adapters/redbeat_scheduler.py``). Everything else -
the sorted set of due times, the meta hash with ``last_run_at``, the lock - is RedBeat's own.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from celery import Celery
from celery.schedules import BaseSchedule, schedstate
from redbeat.decoder import RedBeatJSONDecoder, RedBeatJSONEncoder
from redbeat.schedulers import REDBEAT_SENTINEL_KEY, RedBeatSchedulerEntry, ensure_conf, get_redis

from tenant_worker import constants
from tenant_worker.domain.localtime import format_hhmm, next_local_run, parse_hhmm
from tenant_worker.domain.ports import StoredSchedule

# How far back a "last run" is considered: anything older is simply overdue (and the maths never
# has to walk from year 1, which is what RedBeat passes for a never-run entry).
_LOOKBACK = dt.timedelta(days=2)


class TenantLocalSchedule(BaseSchedule):  # type: ignore[misc]
    """Fires once a day at ``send_time`` on the clock of IANA zone ``timezone`` (DST-correct)."""

    def __init__(self, timezone: str, send_time: dt.time, nowfun: Any = None, app: Celery | None = None) -> None:
        super().__init__(nowfun=nowfun, app=app)
        self.timezone = timezone
        self.send_time = send_time

    def next_run(self, last_run_at: dt.datetime | None) -> dt.datetime:
        """The first run after ``last_run_at`` (never-run or long-ago entries: at most two days back)."""
        floor = self.now() - _LOOKBACK
        after = floor if last_run_at is None or _aware(last_run_at) < floor else _aware(last_run_at)
        return next_local_run(after, self.timezone, self.send_time)

    def remaining_estimate(self, last_run_at: dt.datetime) -> dt.timedelta:
        """Time from ``last_run_at`` to the next run.

        RedBeat is the only caller: it places the entry in its sorted set at ``last_run_at + this``,
        so measuring from ``last_run_at`` (not from now, as for Celery's interval) makes the score
        exactly the next run, and a tick never loads an entry before it is due.
        """
        return self.next_run(last_run_at) - _aware(last_run_at)

    def is_due(self, last_run_at: dt.datetime) -> schedstate:
        """Due when the next run after ``last_run_at`` has passed; also says how long until the one after."""
        now = self.now()
        upcoming = self.next_run(last_run_at)
        if upcoming <= now:
            return schedstate(True, (next_local_run(now, self.timezone, self.send_time) - now).total_seconds())
        return schedstate(False, (upcoming - now).total_seconds())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TenantLocalSchedule):
            return (self.timezone, self.send_time) == (other.timezone, other.send_time)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.timezone, self.send_time))

    def __repr__(self) -> str:
        return f"<tenant-local {format_hhmm(self.send_time)} {self.timezone}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self.timezone, self.send_time, self.nowfun))


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


class TenantJSONEncoder(RedBeatJSONEncoder):  # type: ignore[misc]
    """RedBeat's encoder plus :class:`TenantLocalSchedule` (zone kept by name, time as HH:MM)."""

    def default(self, o: Any) -> Any:
        """Encode tenant-local schedules; everything else as RedBeat does."""
        if isinstance(o, TenantLocalSchedule):
            return {"__type__": "tenant_local", "timezone": o.timezone, "time": format_hhmm(o.send_time)}
        return super().default(o)


class TenantJSONDecoder(RedBeatJSONDecoder):  # type: ignore[misc]
    """RedBeat's decoder plus ``tenant_local`` schedules."""

    def dict_to_object(self, d: dict[str, Any]) -> Any:
        """Decode tenant-local schedules; everything else as RedBeat does."""
        if d.get("__type__") == "tenant_local":
            return TenantLocalSchedule(d["timezone"], parse_hhmm(d["time"]))
        return super().dict_to_object(d)


class TenantScheduleEntry(RedBeatSchedulerEntry):  # type: ignore[misc]
    """RedBeat's entry, (de)serialised with the codec above; storage layout unchanged."""

    @staticmethod
    def decode_definition(definition: str) -> Any:
        """Parse a stored definition, tenant-local schedules included."""
        return json.loads(definition, cls=TenantJSONDecoder)

    def save(self) -> TenantScheduleEntry:
        """Same writes as RedBeat's ``save`` (definition, meta only if absent, score), with our encoder."""
        definition = {
            "name": self.name,
            "task": self.task,
            "args": self.args,
            "kwargs": self.kwargs,
            "options": self.options,
            "schedule": self.schedule,
            "enabled": self.enabled,
        }
        meta = {"last_run_at": self.last_run_at}
        with redbeat_redis(self.app).pipeline() as pipe:
            pipe.hset(self.key, "definition", json.dumps(definition, cls=TenantJSONEncoder))
            pipe.hsetnx(self.key, "meta", json.dumps(meta, cls=RedBeatJSONEncoder))
            pipe.zadd(self.app.redbeat_conf.schedule_key, {self.key: self.score})
            pipe.execute()
        return self


def redbeat_redis(app: Celery) -> Any:
    """RedBeat's client for ``app`` (``decode_responses=True``), the same one at every call.

    With Sentinel, RedBeat's ``get_redis`` makes a new master client at every call, so a new pool: a
    sentinel lookup and a new connection for each entry loaded or saved (a schedule sync of 10,000
    tenants would open 10,000). Forgetting RedBeat's Sentinel after the first call makes ``get_redis``
    return that client from then on, to RedBeat's own code too. One client is enough: its pool asks the
    sentinels again after a connection error, so it follows a failover. Without Sentinel, nothing changes.
    """
    client = get_redis(app)
    vars(app).pop(REDBEAT_SENTINEL_KEY, None)
    return client


def beat_leader(app: Celery) -> str | None:
    """The token (``host:pid:random``) of the beat holding the leader lock, or None when it is free."""
    value = redbeat_redis(app).get(ensure_conf(app).lock_key)
    return None if value is None else str(value)


def schedule_name(slug: str) -> str:
    """RedBeat entry name of a tenant's daily sweep."""
    return constants.TENANT_SCHEDULE_NAME.format(slug=slug)


class RedBeatStore:
    """Reads and writes tenants' daily-sweep entries exactly as RedBeat stores and reads them."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self.conf = ensure_conf(app)

    @property
    def redis(self) -> Any:
        """RedBeat's own client (``decode_responses=True``), created on first use."""
        return redbeat_redis(self.app)

    def key(self, slug: str) -> str:
        """Redis key of a tenant's entry."""
        return str(TenantScheduleEntry.generate_key(self.app, schedule_name(slug)))

    def put(self, slug: str, timezone: str, send_time: dt.time, queue: str, enabled: bool, now: dt.datetime) -> None:
        """Create or update an entry; a new one counts as run at ``now`` so it first fires at the
        next send time (RedBeat fires never-run entries at once). Paused entries leave the sorted set,
        so beat never loads them, but keep their definition and last run."""
        existing = self.redis.hget(self.key(slug), "meta")
        last_run = TenantScheduleEntry.decode_meta(existing)["last_run_at"] if existing else now
        entry = TenantScheduleEntry(
            name=schedule_name(slug),
            task=constants.TASK_SWEEP_TENANT,
            schedule=TenantLocalSchedule(timezone, send_time, app=self.app),
            args=[slug],
            kwargs={},
            options={"queue": queue},
            enabled=enabled,
            last_run_at=last_run,
            app=self.app,
        )
        entry.save()
        if not enabled:
            self.redis.zrem(self.conf.schedule_key, entry.key)

    def get(self, slug: str) -> StoredSchedule | None:
        """The stored entry of ``slug``, or None."""
        return self._load([self.key(slug)]).get(slug)

    def all(self) -> dict[str, StoredSchedule]:
        """Every tenant entry, by slug (one SCAN plus one pipelined read)."""
        pattern = self.conf.key_prefix + schedule_name("*")
        return self._load(sorted(self.redis.scan_iter(match=pattern, count=1000)))

    def delete(self, slug: str) -> bool:
        """Remove the entry and its sorted-set member; True if there was one."""
        with self.redis.pipeline() as pipe:
            pipe.zrem(self.conf.schedule_key, self.key(slug))
            pipe.delete(self.key(slug))
            _, deleted = pipe.execute()
        return bool(deleted)

    def publish_sweep(self, slug: str, queue: str) -> str:
        """Send the tenant's sweep task now (``run-now``); returns the task id."""
        result = self.app.send_task(constants.TASK_SWEEP_TENANT, args=[slug], queue=queue)
        return str(result.id)

    def _load(self, keys: list[str]) -> dict[str, StoredSchedule]:
        with self.redis.pipeline() as pipe:
            for key in keys:
                pipe.hmget(key, "definition", "meta")
                pipe.zscore(self.conf.schedule_key, key)
            replies = pipe.execute()
        found: dict[str, StoredSchedule] = {}
        for (definition, meta), score in zip(replies[::2], replies[1::2], strict=True):
            if not definition:
                continue
            data = TenantScheduleEntry.decode_definition(definition)
            plan = data.get("schedule")
            if data.get("task") != constants.TASK_SWEEP_TENANT or not isinstance(plan, TenantLocalSchedule):
                continue
            slug = data["args"][0]
            found[slug] = StoredSchedule(
                slug=slug,
                timezone=plan.timezone,
                send_time=plan.send_time,
                queue=(data.get("options") or {}).get("queue"),
                enabled=bool(data.get("enabled", True)),
                last_run_at=TenantScheduleEntry.decode_meta(meta)["last_run_at"],
                due_at=None if score is None else dt.datetime.fromtimestamp(score, dt.UTC),
            )
        return found
