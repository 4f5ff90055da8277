"""Beat's scheduler: RedBeat's, with tenant-local entries, a leader lock it keeps itself, and Redis
outages ridden out instead of ending the process (see :class:`TenantRedBeatScheduler`)."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import replace
from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError
from redbeat.schedulers import RedBeatScheduler
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tenant_worker.adapters.beat_lock import RedisLeaderLock
from tenant_worker.adapters.redbeat import TenantScheduleEntry, redbeat_redis
from tenant_worker.domain.backoff import BEAT_RECONNECT

# First retry delay after Redis stopped answering; it doubles up to beat_max_interval.

log = logging.getLogger("celery.beat")


class BeatLockLost(RuntimeError):
    """This beat stalled past its lease and another beat leads now; it stops so that its supervisor
    restarts it (as the standby) and the stall shows."""


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

    Due entries are published before they are advanced (see :meth:`apply_async`), so an outage that
    starts in the middle of a tick never loses a run.
    """

    Entry = TenantScheduleEntry

    def __init__(self, app: Celery, *args: Any, **kwargs: Any) -> None:
        super().__init__(app, *args, **kwargs)
        self.leader_key: str | None = getattr(self, "lock_key", None)
        self.lock_key: str | None = None
        self.leader_lock = (
            RedisLeaderLock(redbeat_redis(app), self.leader_key, self.lock_timeout) if self.leader_key else None
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

    def apply_async(self, entry: Any, producer: Any = None, advance: bool = True, **kwargs: Any) -> Any:
        """Send the entry's task, then advance the entry (Celery and RedBeat advance first).

        Advancing first loses the run when the publish fails (Redis went away between the two writes,
        or the router could not reach PostgreSQL): the entry counts as run and a tenant's daily sweep
        waits a day. Publishing first, a failed publish leaves the entry due and it is sent on a later
        tick; a lost advance (Redis went away right after the publish) sends it once more, which the
        tasks tolerate: a second sweep of the same day claims nothing, a recovery tick is idempotent.
        """
        result = super().apply_async(entry, producer, advance=False, **kwargs)
        if advance:
            self.reserve(entry)
        return result

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
        return replace(BEAT_RECONNECT, cap=float(self.max_interval)).delay(self._failures)

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
