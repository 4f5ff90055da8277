"""Quiet hours: publishing the reminders that waited for a tenant's sending window to open.

Sweeps and send tasks never schedule a send for later: outside the window they leave the reminder
``pending`` and unpublished (a countdown of hours would exceed the Redis visibility timeout and be
redelivered in a loop). The recovery tick (:mod:`tenant_worker.services.recovery`) runs
:func:`release_deferred` every ``RECOVERY_INTERVAL_SECONDS`` and publishes them
for every tenant whose window is open, which is also how reminders the broker refused, or whose
task was lost, get published again without waiting for the next daily sweep.
"""

from __future__ import annotations

import datetime as dt

from tenant_worker.config import Settings
from tenant_worker.domain.ports import ReminderQueue
from tenant_worker.domain.storage import UnitOfWorkFactory
from tenant_worker.services import dispatch
from tenant_worker.services.tenants import sending_window


def release_deferred(
    uow: UnitOfWorkFactory, queue: ReminderQueue, settings: Settings, now: dt.datetime | None = None
) -> dict[str, int]:
    """Publish waiting pending reminders of tenants inside their window; returns counts by slug."""
    now = now or dt.datetime.now(dt.UTC)
    published_before = dispatch.published_before(settings, now)
    with uow() as tx:
        # Both look-ups are index probes (see LedgerMaintenance), never a walk through the backlog.
        ids = set(tx.maintenance.tenants_with_unpublished())
        ids.update(tx.maintenance.tenants_with_lost_tasks(published_before))
        tenants = tx.catalog.list_tenants(ids=sorted(ids)) if ids else []
    released: dict[str, int] = {}
    for tenant in tenants:
        if not sending_window(tenant).is_open(now, tenant.timezone):
            continue
        # The same bounded top-up as a sweep: the tenant's finished batches publish the rest.
        report = dispatch.publish_next_batches(uow, tenant.id, queue, settings, now)
        released[tenant.slug] = len(report.published)
        if report.error:
            break  # the broker is down: the next run retries every tenant
    return released
