"""Publishing send work with a bound per tenant, so tenants sharing a queue interleave.

A sweep may claim 50,000 reminders for one tenant. Publishing them all at once would put 1,000
batches in front of every other tenant on the same shard. Instead at most ``max_batches_per_tenant``
batches of a tenant are queued or running at any time; the rest wait in the ledger as ``pending``
without ``enqueued_at``. Every finished send task stamps its tenant's next batches
(:func:`stamp_next_batches`, in the transaction that records its outcomes) and publishes them: a
continuation that tops the tenant back up from the ledger. Sweeps, quiet-hours releases and moves
use the same bound (:func:`publish_next_batches`). A small tenant swept while a big one
drains therefore waits behind at most ``max_batches_per_tenant`` of the big tenant's batches, not
behind its whole backlog, and the big tenant still keeps ``max_batches x batch_size`` SMS in flight.

The ledger stays the source of truth: rows are stamped before their task is published (under a
per-tenant advisory lock, so concurrent continuations never exceed the bound), un-stamped if the
broker refuses them, and a chain that was lost (Redis flushed, a worker killed between stamp and
publish) is restarted by the tenant's next sweep, which publishes whatever has no live task.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

from tenant_worker.config import Settings
from tenant_worker.domain.ports import EnqueueError, ReminderQueue
from tenant_worker.domain.storage import Ledger, UnitOfWorkFactory


@dataclass
class PublishReport:
    """What one top-up published, and what still waits in the ledger."""

    published: list[int]
    backlog: int = 0
    not_published: int = 0
    error: str | None = None


def batches_allowed(outstanding_rows: int, batch_size: int, max_batches: int) -> int:
    """How many more batches a tenant may have in flight: a partial batch (a retry of a few
    reminders) occupies a whole slot, which keeps the bound simple and conservative."""
    in_flight = -(-outstanding_rows // batch_size)
    return max(0, max_batches - in_flight)


def publish_next_batches(
    uow: UnitOfWorkFactory,
    tenant_id: int,
    queue: ReminderQueue,
    settings: Settings,
    now: dt.datetime | None = None,
) -> PublishReport:
    """Publish the tenant's oldest unpublished pending reminders, up to its bound of batches."""
    now = now or dt.datetime.now(dt.UTC)
    with uow() as tx:
        repo = tx.ledger(tenant_id)
        repo.lock_for_dispatch()
        ids = stamp_next_batches(repo, settings, now)
        backlog = count_backlog(repo, settings, now)
    report = PublishReport(published=[], backlog=backlog)
    publish_batches(uow, tenant_id, ids, queue, settings.send_batch_size, report)
    return report


def published_before(settings: Settings, now: dt.datetime) -> dt.datetime:
    """Reminders published before this moment and still pending have lost their task."""
    return now - dt.timedelta(seconds=settings.requeue_after_seconds)


def count_backlog(repo: Ledger, settings: Settings, now: dt.datetime) -> int:
    """Pending reminders waiting in the ledger for a task (for reports; dispatching never counts)."""
    return repo.count_unpublished(published_before(settings, now))


def stamp_next_batches(repo: Ledger, settings: Settings, now: dt.datetime) -> list[int]:
    """Inside the caller's transaction, holding the tenant's dispatch lock: stamp the reminders the
    tenant may publish now (up to its bound of batches) and return their ids. Its cost depends on
    the batches in flight, not on the backlog, as every finished batch runs it."""
    before = published_before(settings, now)
    batch = settings.send_batch_size
    limit = batches_allowed(repo.outstanding(before), batch, settings.max_batches_per_tenant) * batch
    return repo.stamp_unpublished(before, limit)


def publish_batches(
    uow: UnitOfWorkFactory,
    tenant_id: int,
    reminder_ids: list[int],
    queue: ReminderQueue,
    batch_size: int,
    report: PublishReport,
    tenant_queue: str | None = None,
) -> None:
    """Publish stamped reminders in batches; at the first broker failure, clear ``enqueued_at`` of the
    rest so the next sweep or continuation publishes them."""
    for start in range(0, len(reminder_ids), batch_size):
        batch = reminder_ids[start : start + batch_size]
        try:
            queue.enqueue(tenant_id, batch, queue=tenant_queue)
        except EnqueueError as exc:
            rest = reminder_ids[start:]
            report.not_published = len(rest)
            report.backlog += len(rest)
            report.error = f"{len(rest)} pending reminders not enqueued ({exc}); the recovery tick retries"
            mark_unpublished(uow, tenant_id, rest)
            return
        report.published.extend(batch)


def count_fresh(published: Collection[int], fresh: Collection[int]) -> tuple[int, int]:
    """(newly claimed, re-published) among the published ids."""
    fresh_set = set(fresh)
    new = sum(1 for reminder_id in published if reminder_id in fresh_set)
    return new, len(published) - new


def mark_unpublished(uow: UnitOfWorkFactory, tenant_id: int, reminder_ids: list[int]) -> None:
    """The broker refused their task: clear ``enqueued_at`` so the next recovery tick publishes them
    (rather than waiting ``REQUEUE_AFTER_SECONDS`` for a task that does not exist)."""
    with uow() as tx:
        tx.ledger(tenant_id).mark_enqueued(reminder_ids, enqueued=False)
