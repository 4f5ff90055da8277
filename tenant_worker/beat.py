"""The beat scheduler this app runs: RedBeat with tenant-local entries, reconciling on leadership.

``beat_scheduler`` points here rather than at the adapter so the adapter stays free of services:
this module is where beat meets the database (like ``tasks.py`` for workers).
"""

from __future__ import annotations

import logging
from typing import Any

from tenant_worker import runtime
from tenant_worker.adapters.redbeat import RedBeatStore, TenantRedBeatScheduler
from tenant_worker.services.schedules import ScheduleService

log = logging.getLogger("celery.beat")


class Scheduler(TenantRedBeatScheduler):
    """Runs ``schedule sync`` once, on its first tick as leader (the lock is held by then).

    A standby that takes over syncs too, so entries created or changed while no beat ran are in
    place before the first sweep. A failing sync is logged and beat carries on with what Redis has.
    """

    _synced = False

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """RedBeat's tick, preceded once by a reconciliation of the tenants table with Redis."""
        interval = super().tick(*args, **kwargs)
        if not self._synced:
            self._synced = True
            try:
                report = ScheduleService(runtime.sessions(), RedBeatStore(self.app)).sync()
            except Exception as exc:  # beat must keep sending what it has
                log.error("beat: schedule sync at start failed: %s", type(exc).__name__)
            else:
                log.info(
                    "beat: schedules synced: %d created, %d updated, %d removed, %d unchanged",
                    len(report.created),
                    len(report.updated),
                    len(report.removed),
                    report.unchanged,
                )
            return 0.0
        return interval
