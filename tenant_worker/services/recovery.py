"""The recovery tick: what makes the pipeline heal itself within a minute or so of any fault.

Beat runs :func:`recover` every ``RECOVERY_INTERVAL_SECONDS`` on the control queue. Each run:

0. if the broker's Redis lost its data since the last tick (a restart without persistence), marks
   every published ``pending`` reminder unpublished, as their tasks are gone;
1. settles rows still ``sending`` ``STALE_SENDING_SECONDS`` after their claim (their worker was
   killed, or its database connection never came back): a row whose request never started goes back
   to ``pending`` and is sent again; one that may have reached MessageBird becomes ``unknown`` (never
   resent automatically, alerted). Dead batches thereby stop counting toward the tenant's in-flight
   bound;
2. probes MessageBird while the gateway breaker is open, and closes it once the key works;
3. publishes, per tenant whose window is open, the pending reminders no live task carries (never
   published, repaired in step 1, deferred by quiet hours or the breaker, or published more than
   ``REQUEUE_AFTER_SECONDS`` ago: the task was lost), within the tenant's bound of batches;
4. delivers the alert counts held back by the per-incident window.

Every step reads an index by age or by tenant, so an idle tick costs a few index probes.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from tenant_worker.config import Settings
from tenant_worker.domain.model import AccessCheck, ReminderStatus
from tenant_worker.domain.ports import AlertSink, BrokerMarker, GatewayBreaker, ReminderQueue, SmsGateway
from tenant_worker.domain.storage import UnitOfWorkFactory
from tenant_worker.services import quiet_hours
from tenant_worker.services.alerting import BatchAlerts

log = logging.getLogger(__name__)

# Rows settled per statement; a tick loops until fewer come back (bounded, see MAX_REPAIR_ROUNDS).
REPAIR_LIMIT = 5000
MAX_REPAIR_ROUNDS = 20


@dataclass
class RecoveryReport:
    """What one tick repaired and published."""

    requeued: int = 0
    # Published reminders whose tasks Redis lost, published again.
    republished: int = 0
    unknown: int = 0
    failed: int = 0
    breaker: str = "closed"
    released: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the task's result)."""
        return asdict(self)


def recover(
    uow: UnitOfWorkFactory,
    queue: ReminderQueue,
    settings: Settings,
    alerts: AlertSink,
    gateway: SmsGateway,
    breaker: GatewayBreaker,
    broker: BrokerMarker,
    now: dt.datetime | None = None,
) -> RecoveryReport:
    """One recovery tick (see the module docs)."""
    now = now or dt.datetime.now(dt.UTC)
    report = RecoveryReport()
    if broker.lost_since_last_check():
        with uow() as tx:
            report.republished = tx.maintenance.forget_publications()
        if report.republished:
            log.warning(
                "recovery: Redis lost its queued tasks (restarted without persistence?): %d pending reminders "
                "are published again",
                report.republished,
            )
    repair_stale(uow, settings, alerts, now, report)
    if breaker.is_open():
        if gateway.check_access() == AccessCheck.OK:
            breaker.reset()
            log.warning("recovery: MessageBird accepts the access key again; sending resumes")
            report.breaker = "reset"
        else:
            report.breaker = "open"
    if report.breaker != "open":
        report.released = quiet_hours.release_deferred(uow, queue, settings, now)
    alerts.flush_due()
    return report


def repair_stale(
    uow: UnitOfWorkFactory, settings: Settings, alerts: AlertSink, now: dt.datetime, report: RecoveryReport
) -> None:
    """Step 1: settle stale ``sending`` rows, log one line, and alert the final ones per tenant."""
    before = now - dt.timedelta(seconds=settings.stale_sending_seconds)
    by_tenant: dict[int, BatchAlerts] = defaultdict(BatchAlerts)
    for _ in range(MAX_REPAIR_ROUNDS):
        with uow() as tx:
            rows = tx.maintenance.repair_stale_sending(before, settings.send_max_attempts, REPAIR_LIMIT)
        for row in rows:
            if row.status == ReminderStatus.PENDING:
                report.requeued += 1
            elif row.status == ReminderStatus.UNKNOWN:
                report.unknown += 1
                by_tenant[row.tenant_id].add(row.status, "worker_lost", row.reminder_id, "worker lost while sending")
            else:
                report.failed += 1
                by_tenant[row.tenant_id].add(row.status, "worker_lost", row.reminder_id, "worker lost before sending")
        if len(rows) < REPAIR_LIMIT:
            break
    if report.requeued or report.unknown or report.failed:
        log.warning(
            "recovery: %d reminders claimed by a lost worker: %d back to pending (never sent), %d unknown "
            "(may have been delivered), %d failed (lost their worker %d times)",
            report.requeued + report.unknown + report.failed,
            report.requeued,
            report.unknown,
            report.failed,
            settings.send_max_attempts,
        )
    if by_tenant:
        with uow() as tx:
            slugs = {tenant.id: tenant.slug for tenant in tx.catalog.list_tenants(ids=list(by_tenant))}
        for tenant_id, batch in by_tenant.items():
            batch.send(alerts, slugs.get(tenant_id, str(tenant_id)))
