"""Public Python API for tenants' daily sweep schedules (what ``tenant-worker schedule`` uses).

    from tenant_worker.schedules import connect
    schedules = connect()                      # settings from the environment
    schedules.show("acme")                     # next run in UTC and local time, last run
    schedules.upcoming("acme", datetime(2026, 3, 28, tzinfo=UTC), 3)
    schedules.set_time("acme", time(9, 30), "Europe/Berlin")
    schedules.pause("acme"); schedules.resume("acme"); schedules.remove("acme")
    schedules.run_now("acme"); schedules.sync()

Connections are opened on first use, not by :func:`connect`.
"""

from __future__ import annotations

from tenant_worker.bootstrap import bootstrap
from tenant_worker.config import Settings
from tenant_worker.services.schedules import ScheduleService, SyncReport, queue_for_tenant

__all__ = ["ScheduleService", "SyncReport", "connect", "queue_for_tenant"]


def connect(settings: Settings | None = None) -> ScheduleService:
    """A :class:`ScheduleService` on the configured PostgreSQL and RedBeat Redis."""
    return bootstrap(settings).schedules()
