"""The beat scheduler this app runs: RedBeat with tenant-local entries, reconciling on leadership.

``beat_scheduler`` points here rather than at the adapter so the adapter stays free of services:
this module is where beat meets the database (like ``tasks.py`` for workers).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from tenant_worker.adapters import prometheus
from tenant_worker.adapters.beat_lock import process_token
from tenant_worker.adapters.heartbeat import HeartbeatThread, RedisHeartbeats, process_heartbeat
from tenant_worker.adapters.prometheus_state import StateCollector
from tenant_worker.adapters.redbeat_scheduler import TenantRedBeatScheduler
from tenant_worker.bootstrap import Services, bootstrap
from tenant_worker.celery_app import settings_of

log = logging.getLogger("celery.beat")


class Scheduler(TenantRedBeatScheduler):
    """Runs ``schedule sync`` whenever this beat starts leading: on its first tick as leader, when a
    standby takes over, and after a Redis outage (Redis may have come back without its data).

    A standby that takes over syncs too, so entries created or changed while no beat ran are in place
    before the first sweep. After an outage, entries the sync has to re-create count as run when Redis
    went away, so a daily sweep that fell due meanwhile is sent at once (sweeps are idempotent). A
    failing sync is logged and beat carries on with what Redis has.
    """

    _synced = True
    _sync_since: dt.datetime | None = None
    _services: Services | None = None

    def services(self) -> Services:
        """Beat's ports, bootstrapped on first use on beat's own app."""
        if self._services is None:
            self._services = bootstrap(settings_of(self.app), self.app)
        return self._services

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = settings_of(self.app)
        if settings.metrics_port:
            # Beat exports the shared-state gauges (queue depths, oldest pending, breaker) besides its
            # leadership: one long-lived process per deployment (see adapters/prometheus_state.py).
            state = StateCollector(settings.database_url, self.services().redis, settings.shard_count)
            prometheus.serve(settings.metrics_host, settings.metrics_port, settings.metrics_dir, [state])
        # Leader or standby, for `tenant-worker status` (key) and the Kubernetes probes (file). Not
        # from the lazy instance `celery beat` makes only to print its banner.
        self._ticked_at = time.monotonic()
        name = self.leader_lock.token if self.leader_lock is not None else process_token()
        self._heartbeat = HeartbeatThread(
            RedisHeartbeats(self.services().redis),
            lambda: process_heartbeat("beat", name, leading=self.leading and self._down_since is None),
            settings.heartbeat_file,
            # A tick runs at least every beat_max_interval; none for a whole lock timeout means the loop
            # is stuck (the leader's lock has expired by then anyway): let the liveness probe fail.
            alive=lambda: time.monotonic() - self._ticked_at < self.lock_timeout,
        )
        if not kwargs.get("lazy"):
            self._heartbeat.start()

    def close(self) -> None:
        """Release the lock (RedBeat's close) and stop reporting leadership."""
        super().close()
        prometheus.BEAT_LEADER.set(0)
        self._heartbeat.stop()

    def on_leadership(self, down_since: dt.datetime | None) -> None:
        """Sync on the next tick (after the due entries are sent)."""
        self._synced, self._sync_since = False, down_since

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """RedBeat's tick, followed by a reconciliation of the tenants table with Redis when due."""
        self._ticked_at = time.monotonic()
        interval = super().tick(*args, **kwargs)
        prometheus.BEAT_LEADER.set(int(self.leading and self._down_since is None))
        if self._synced or not self.leading:
            return interval
        self._synced = True
        try:
            report = self.services().schedules().sync(now=self._sync_since)
        except Exception as exc:  # beat must keep sending what it has
            log.error("beat: schedule sync failed: %s", type(exc).__name__)
        else:
            log.info(
                "beat: schedules synced: %d created, %d updated, %d removed, %d unchanged",
                len(report.created),
                len(report.updated),
                len(report.removed),
                report.unchanged,
            )
        return 0.0
