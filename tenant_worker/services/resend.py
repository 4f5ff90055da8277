"""Sending again, on an operator's request, reminders that ended ``failed`` or ``unknown``.

The use: MessageBird refused a batch for a reason that is now fixed, or a worker died mid-send and the
operator has checked (e.g. in MessageBird's dashboard) that the ``unknown`` ones never arrived. Only
``failed`` and ``unknown`` rows are reopened, never ``sent`` (or anything else), so running it twice
changes nothing the second time; the rows go back to ``pending`` with fresh attempts and are
published within the tenant's bound of batches, like a sweep's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from tenant_worker.config import Settings
from tenant_worker.domain.model import ReminderStatus
from tenant_worker.domain.ports import ReminderQueue
from tenant_worker.domain.storage import UnitOfWorkFactory
from tenant_worker.services import dispatch

RESENDABLE = (ReminderStatus.FAILED, ReminderStatus.UNKNOWN)


@dataclass
class ResendReport:
    """What a resend reopened and published."""

    tenant: str
    status: str
    reopened: int = 0
    published: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def count_resendable(uow: UnitOfWorkFactory, slug: str, status: str, since: dt.datetime | None) -> int:
    """How many of the tenant's reminders a resend with these filters would reopen."""
    _check(status)
    with uow() as tx:
        tenant = tx.catalog.find_tenant(slug)
        return tx.ledger(tenant.id).count_ended(status, since)


def resend(
    uow: UnitOfWorkFactory,
    slug: str,
    status: str,
    since: dt.datetime | None,
    queue: ReminderQueue,
    settings: Settings,
    now: dt.datetime | None = None,
) -> ResendReport:
    """Reopen the tenant's ``status`` reminders (ended at or after ``since``) and publish them."""
    _check(status)
    report = ResendReport(slug, status)
    with uow() as tx:
        tenant = tx.catalog.find_tenant(slug)
        report.reopened = len(tx.ledger(tenant.id).reopen(status, since))
    if report.reopened:
        published = dispatch.publish_next_batches(uow, tenant.id, queue, settings, now)
        report.published = len(published.published)
        report.error = published.error
    return report


def _check(status: str) -> None:
    if status not in RESENDABLE:
        raise ValueError(f"only failed or unknown reminders can be sent again, not {status!r}")
