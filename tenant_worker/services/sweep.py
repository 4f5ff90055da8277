"""Sweep: claim one tenant's due reminders for one local date, then enqueue their send tasks.

The ledger is the source of truth. The claim commits before anything is enqueued; if the broker is
down, the reminders stay ``pending`` without ``enqueued_at`` and the tenant's next sweep enqueues them,
so nothing claimed is ever stranded. Only a bounded number of the tenant's batches is published at once
(:mod:`tenant_worker.services.dispatch`), so one large tenant cannot bury the others on its queue.
Rows stuck in ``sending`` (their worker died mid-send) are the recovery tick's business
(:mod:`tenant_worker.services.recovery`), every half minute rather than once a day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from tenant_worker.config import Settings
from tenant_worker.domain.model import ReminderStatus, SkipReason, TenantStatus
from tenant_worker.domain.ports import ReminderQueue
from tenant_worker.domain.records import Tenant
from tenant_worker.domain.sms_limits import over_segment_limit
from tenant_worker.domain.storage import UnitOfWorkFactory
from tenant_worker.services import dispatch
from tenant_worker.services.rendering import build_sms, template_selector
from tenant_worker.services.tenants import local_today, sending_window, tenant_windows


@dataclass
class SweepReport:
    """What one sweep of one tenant did."""

    tenant: str
    local_date: str
    claimed: int = 0
    skipped: int = 0
    enqueued: int = 0
    re_enqueued: int = 0
    not_enqueued: int = 0
    # Pending reminders left in the ledger for the tenant's finished batches to publish (fairness).
    backlog: int = 0
    # Pending reminders held back because the tenant's sending window is closed; the recovery
    # tick publishes them when it opens.
    deferred: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass
class PreviewLine:
    """One SMS a sweep would send (or skip), for ``--dry-run``."""

    subscription_id: int
    window: int
    recipient: str | None
    body: str | None
    segments: int | None
    skip_reason: str | None = None


def sweep_tenant(
    uow: UnitOfWorkFactory,
    slug: str,
    queue: ReminderQueue,
    settings: Settings,
    local_date: dt.date | None = None,
    now: dt.datetime | None = None,
) -> SweepReport:
    """Claim and enqueue everything due for ``slug`` on ``local_date`` (default: its local today)."""
    now = now or dt.datetime.now(dt.UTC)
    with uow() as tx:
        tenant = tx.catalog.find_tenant(slug)
        day = local_date or local_today(tenant.timezone, now)
        report = SweepReport(slug, day.isoformat())
        if tenant.status != TenantStatus.ACTIVE:
            report.error = f"tenant is {tenant.status}; nothing swept"
            return report
        repo = tx.ledger(tenant.id)
        # One transaction, few round trips: both locks, the claim and the stamping of the first
        # batches (a sweep of 100 tenants is dominated by per-tenant round trips).
        repo.lock_for_sweep_and_dispatch()
        claimed = repo.claim_due_reminders(day, tenant_windows(tenant))
        report.claimed = len(claimed)
        report.skipped = sum(1 for _, status in claimed if status == ReminderStatus.SKIPPED)
        fresh = {reminder_id for reminder_id, status in claimed if status == ReminderStatus.PENDING}
        if not sending_window(tenant).is_open(now, tenant.timezone):
            # Quiet hours: claimed (so the decision is in the ledger) but not published; no
            # countdown, which Redis would redeliver in a loop past its visibility timeout.
            report.deferred = dispatch.count_backlog(repo, settings, now)
            return report
        tenant_id, tenant_queue = tenant.id, tenant.queue
        ids = dispatch.stamp_next_batches(repo, settings, now)
        backlog = dispatch.count_backlog(repo, settings, now)
    # The claim and the stamps are committed first: whatever happens next, the reminders are in the
    # ledger. Only the tenant's first batches are published now; finished batches publish the rest.
    published = dispatch.PublishReport(published=[], backlog=backlog)
    dispatch.publish_batches(uow, tenant_id, ids, queue, settings.send_batch_size, published, tenant_queue)
    report.enqueued, report.re_enqueued = dispatch.count_fresh(published.published, fresh)
    report.backlog = published.backlog
    report.not_enqueued = published.not_published
    report.error = published.error
    return report


def preview_sweep(
    uow: UnitOfWorkFactory, slug: str, local_date: dt.date | None = None, now: dt.datetime | None = None
) -> tuple[Tenant, dt.date, list[PreviewLine]]:
    """What a sweep would claim and send, rendered, without writing anything (``--dry-run``)."""
    with uow() as tx:
        tenant = tx.catalog.find_tenant(slug)
        day = local_date or local_today(tenant.timezone, now)
        repo = tx.ledger(tenant.id)
        due = repo.preview_due_reminders(day, tenant_windows(tenant))
        jobs = repo.subscription_jobs([d.subscription_id for d in due])
        choose = template_selector(tenant, tx.catalog.templates(tenant.id))
    lines = []
    for item in due:
        job = jobs[item.subscription_id]
        if item.skip_reason:
            lines.append(PreviewLine(item.subscription_id, item.window_days, job.phone, None, None, item.skip_reason))
            continue
        rendered = build_sms(tenant, choose(item.window_days, job.locale), job, day)
        skip = SkipReason.TOO_LONG.value if over_segment_limit(rendered, tenant.max_segments) else None
        lines.append(
            PreviewLine(item.subscription_id, item.window_days, job.phone, rendered.body, rendered.segments, skip)
        )
    return tenant, day, lines


def tenants_to_sweep(uow: UnitOfWorkFactory) -> list[str]:
    """Every active tenant (``sweep_all_tenants``); quiet hours decide when their SMS go out."""
    with uow() as tx:
        return [t.slug for t in tx.catalog.list_tenants(TenantStatus.ACTIVE)]
