"""RedBeat: tenant-local schedules that survive Redis, the leader lock, and a store for entries.

RedBeat serialises an entry's schedule with its own JSON encoder, which knows ``crontab`` (stored
without a zone, so evaluated in UTC here), ``rrule`` (whose ``dtstart`` zone is reduced to a fixed
offset) and intervals; any other ``celery.schedules.schedule`` subclass is silently saved as a plain
interval. So a tenant's "10:00 Europe/Berlin" would drift by an hour at the next DST change. Here
:class:`TenantLocalSchedule` is encoded as ``{"__type__": "tenant_local", "timezone": ..., "time":
...}`` by an encoder/decoder pair that extend RedBeat's, used by :class:`TenantScheduleEntry`
(RedBeat's entry with only its codec swapped) and :class:`TenantRedBeatScheduler`. Everything else -
the sorted set of due times, the meta hash with ``last_run_at``, the lock - is RedBeat's own.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from typing import Any

from celery import Celery
from celery.schedules import BaseSchedule, schedstate
from kombu.exceptions import OperationalError
from redbeat.decoder import RedBeatJSONDecoder, RedBeatJSONEncoder
from redbeat.schedulers import RedBeatScheduler, RedBeatSchedulerEntry, ensure_conf, get_redis
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tenant_worker import constants
from tenant_worker.adapters.beat_lock import RedisLeaderLock
from tenant_worker.domain.backoff import retry_delay
from tenant_worker.domain.localtime import format_hhmm, next_local_run, parse_hhmm
from tenant_worker.domain.ports import StoredSchedule

# How far back a "last run" is considered: anything older is simply overdue (and the maths never
# has to walk from year 1, which is what RedBeat passes for a never-run entry).
_LOOKBACK = dt.timedelta(days=2)
# First retry delay after Redis stopped answering; it doubles up to beat_max_interval.
RECONNECT_FIRST_SECONDS = 0.5

log = logging.getLogger("celery.beat")


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
        with get_redis(self.app).pipeline() as pipe:
            pipe.hset(self.key, "definition", json.dumps(definition, cls=TenantJSONEncoder))
            pipe.hsetnx(self.key, "meta", json.dumps(meta, cls=RedBeatJSONEncoder))
            pipe.zadd(self.app.redbeat_conf.schedule_key, {self.key: self.score})
            pipe.execute()
        return self


class BeatLockLost(RuntimeError):
    """Another beat holds the leader lock now; this one must stop so its supervisor restarts it."""


# What an unreachable Redis raises: redis-py's errors from RedBeat's client, kombu's when publishing.
REDIS_DOWN: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OperationalError)


class TenantRedBeatScheduler(RedBeatScheduler):  # type: ignore[misc]
    """RedBeat's scheduler with tenant-local entries, a leader lock it keeps itself, and Redis outages
    ridden out instead of ending the process.

    Every tick first takes or renews the lock (:class:`RedisLeaderLock`; RedBeat's own lock handling is
    off: ``lock_key`` is emptied, so its ``beat_init`` receiver and its tick leave the lock alone), and
    sends due entries only while this beat holds it:

    * Redis unreachable: one warning, then the tick returns a retry delay that doubles from about
      0.5 s up to ``beat_max_interval``, and nothing is sent until Redis answers again; then one line
      says how long it lasted.
    * Back, and the lock still holds this process's token (a short outage, or Redis restored it from
      its append-only file): this beat goes on leading at once.
    * Back, and the key is gone (Redis lost its data, or the lease ran out): it takes the lock again if
      it is free, re-installs the static entries and has the tenants' entries re-synced, since Redis
      may have lost them too.
    * Back, and another beat holds the lock (it took over while this one could not reach Redis): this
      one stands by and polls for the lock like any standby. Never two leaders.
    * Redis refuses the password (it was changed): not an outage; the error ends the process, which
      exits non-zero (2) like any error that stops beat.
    * The lock gone or taken while its lease ran, though Redis never stopped answering: Redis restarted
      without its data between two ticks. As after an outage: take it again if free, else stand by.
    * Another beat's token on the lock after the lease ran out, though Redis never stopped answering:
      this process stalled for longer than the lock timeout and a standby took over. Something is badly
      wrong with this process, so the tick raises :class:`BeatLockLost` and ``tenant-worker beat``
      exits 3 (its supervisor restarts it as a standby).
    """

    Entry = TenantScheduleEntry

    def __init__(self, app: Celery, *args: Any, **kwargs: Any) -> None:
        super().__init__(app, *args, **kwargs)
        self.leader_key: str | None = getattr(self, "lock_key", None)
        self.lock_key: str | None = None
        self.leader_lock = (
            RedisLeaderLock(get_redis(app), self.leader_key, self.lock_timeout) if self.leader_key else None
        )
        self.leading = False
        self._standby_logged = False
        self._down_since: float | None = None  # time.monotonic() when Redis stopped answering
        self._down_at: dt.datetime | None = None
        self._failures = 0
        self._renewed_at = 0.0  # time.monotonic() of the last successful acquire or extend

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """Take or renew the lock, then RedBeat's tick; a Redis outage returns a retry delay."""
        try:
            if not self._lead():
                return float(self.max_interval)
            return float(super().tick(*args, **kwargs))
        except AuthenticationError:
            # Not an outage: the password changed. Settings are read once, so waiting cannot help;
            # the error ends beat (status 2) and a restart picks up the new secret.
            raise
        except REDIS_DOWN as exc:
            return self._redis_down(exc)

    def on_leadership(self, down_since: dt.datetime | None) -> None:
        """Called when this beat starts leading, or leads again after Redis was unreachable from
        ``down_since``; subclasses reconcile what Redis may have lost."""

    def _lead(self) -> bool:
        lock = self.leader_lock
        was_down = self._down_since is not None
        if lock is None:  # no lock configured (a single beat by design, or a test)
            if was_down:
                self._back("sending again")
            if not self.leading or was_down:
                self.leading = True
                self._restore()
            return True
        if self.leading:
            log.debug("beat: Extending lock...")
            if lock.extend():
                self._renewed_at = time.monotonic()
                if was_down:
                    self._back("this beat still holds the lock: leading on")
                    self._restore()
                return True
            self.leading = False
            holder = lock.holder()
            if not was_down:
                if holder is not None and time.monotonic() - self._renewed_at >= self.lock_timeout:
                    raise BeatLockLost(f"lost the beat lock {self.leader_key!r} to {holder}")
                # Within its lease, so Redis lost it: a restart without data between two ticks (redis-py
                # reconnects by itself, so no error was seen). The schedule may be gone too.
                log.warning("beat: the lock is no longer ours although its lease had not run out (Redis lost it?)")
                self._down_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self.lock_timeout)
        if lock.acquire():
            if was_down:
                self._back("the lock was free: this beat leads now")
            self._renewed_at = time.monotonic()
            log.info("beat: Acquired lock %s as %s", self.leader_key, lock.token)
            self.leading, self._standby_logged = True, False
            self._restore()
            return True
        if was_down:
            self._back(f"{lock.holder()} holds the lock: standing by")
            self._down_at = None  # whoever leads has restored the schedule
        elif not self._standby_logged:
            log.info("beat: Acquiring lock... %s holds it; standing by", lock.holder())
        self._standby_logged = True
        return False

    def _restore(self) -> None:
        """Re-install the static entries after an outage (a restart without data lost them), and
        let subclasses re-sync the rest."""
        down_at, self._down_at = self._down_at, None
        if down_at is not None:
            self.setup_schedule()
        self.on_leadership(down_at)

    def _redis_down(self, exc: BaseException) -> float:
        if self._down_since is None:
            self._down_since, self._down_at = time.monotonic(), dt.datetime.now(dt.UTC)
            log.warning(
                "beat: Redis unreachable (%s); nothing is sent until it answers, retrying every %s s at most",
                type(exc).__name__,
                self.max_interval,
            )
        self._failures += 1
        return retry_delay(self._failures, RECONNECT_FIRST_SECONDS, float(self.max_interval))

    def _back(self, what: str) -> None:
        down_for = time.monotonic() - (self._down_since or time.monotonic())
        log.warning("beat: Redis answers again after %.1f s; %s", down_for, what)
        self._down_since, self._failures = None, 0

    def close(self) -> None:
        """Release the lock if this beat holds it, so a standby takes over at once (if Redis is
        unreachable the lease simply runs out), then RedBeat's and Celery's own cleanup."""
        if self.leader_lock is not None and self.leading and self.leader_key:
            self.leading = False
            try:
                if self.leader_lock.release():
                    log.info("beat: Released lock %s", self.leader_key)
            except REDIS_DOWN:
                log.warning("beat: could not release the lock: it expires within %s s", self.lock_timeout)
        super().close()

    @property
    def info(self) -> str:
        """RedBeat's banner lines, with the lock this class keeps."""
        lines = [str(super().info)]
        if self.leader_key:
            lines.append(f"       . lock -> `{self.leader_key}` {self.lock_timeout}s")
        return "\n".join(lines)


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
        return get_redis(self.app)

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
