"""Moving a tenant to another queue, safely, while its work may be queued or running.

The move commits the tenant's new queue, tells every process's route cache (``announce``), and then
re-publishes the tenant's live pending reminders to the new queue. Tasks already sitting in the old
queue still run wherever that queue is consumed; whichever task claims a reminder first sends it and
the other finds nothing (the ledger's ``pending -> sending`` claim), so every reminder is sent exactly
once whether the old queue is drained, slow, or never consumed again. Rows already ``sending`` finish
on their current worker.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from tenant_worker import constants
from tenant_worker.config import Settings
from tenant_worker.domain.model import ValidationError
from tenant_worker.domain.ports import ReminderQueue
from tenant_worker.domain.shards import (
    ShardError,
    all_shard_queues,
    is_dedicated_queue,
    parse_shards,
    shard_of_queue,
    shard_queue,
    validate_queue_name,
)
from tenant_worker.domain.storage import UnitOfWork, UnitOfWorkFactory
from tenant_worker.services import dispatch


@dataclass
class MoveReport:
    """What a move changed."""

    tenant: str
    old_queue: str
    new_queue: str
    republished: int = 0
    published: int = 0
    backlog: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def target_queue(slug: str, shard: int | None, dedicated: bool, shard_count: int) -> str:
    """The queue named by ``--shard N`` or ``--dedicated``."""
    if dedicated == (shard is not None):
        raise ValidationError(["give exactly one of --shard N or --dedicated"])
    try:
        return constants.dedicated_queue(slug) if dedicated else shard_queue(shard or 0, shard_count)
    except ShardError as exc:
        raise ValidationError([str(exc)]) from None


def move_tenant(
    uow: UnitOfWorkFactory,
    slug: str,
    new_queue: str,
    publisher: ReminderQueue,
    settings: Settings,
    announce: Callable[[], None],
    now: dt.datetime | None = None,
) -> MoveReport:
    """Point ``slug`` at ``new_queue`` and hand its live pending work to that queue (see module doc)."""
    now = now or dt.datetime.now(dt.UTC)
    live_after = now - dt.timedelta(seconds=settings.requeue_after_seconds)
    with uow() as tx:
        tenant = tx.catalog.find_tenant(slug, lock=True)
        report = MoveReport(slug, tenant.queue, new_queue)
        tx.catalog.save_tenant(replace(tenant, queue=new_queue))
        repo = tx.ledger(tenant.id)
        repo.lock_for_dispatch()
        live = repo.published_pending(live_after)
        repo.mark_enqueued(live)
        tenant_id = tenant.id
    announce()
    republished = dispatch.PublishReport(published=[])
    dispatch.publish_batches(uow, tenant_id, live, publisher, settings.send_batch_size, republished)
    report.republished, report.error = len(republished.published), republished.error
    if republished.error is None:
        more = dispatch.publish_next_batches(uow, tenant_id, publisher, settings, now)
        report.published, report.backlog, report.error = len(more.published), more.backlog, more.error
    else:
        # The refused rows were marked unpublished: they, and the rest, wait for the recovery tick.
        with uow() as tx:
            report.backlog = dispatch.count_backlog(tx.ledger(tenant_id), settings, now)
    return report


@dataclass(frozen=True)
class QueueInfo:
    """A queue the system knows of: what kind it is and which tenants are assigned to it."""

    name: str
    kind: str
    tenants: tuple[str, ...] = ()


def known_queues(tx: UnitOfWork, shard_count: int) -> list[QueueInfo]:
    """Every shard (up to ``shard_count`` and any beyond it still assigned), every dedicated queue, the
    control queue and the default queue: the list ``tenant-worker queues`` reports on."""
    assigned = tx.catalog.tenant_queues()
    names = set(all_shard_queues(shard_count)) | set(assigned)
    infos = []
    for name in sorted(names, key=lambda n: (shard_of_queue(n) is None, shard_of_queue(n) or 0, n)):
        kind = "shard" if shard_of_queue(name) is not None else "dedicated" if is_dedicated_queue(name) else "other"
        infos.append(QueueInfo(name, kind, tuple(assigned.get(name, ()))))
    infos.append(QueueInfo(constants.CONTROL_QUEUE, "control"))
    infos.append(QueueInfo(constants.DEFAULT_QUEUE, "default"))
    return infos


def worker_queues(
    tx: UnitOfWork, shard_count: int, shards: str | None, queues: list[str], tenants: list[str]
) -> list[str]:
    """The queues a worker started with ``--shards``/``--queues``/``--tenant`` consumes; with none of
    them, every known queue (a single development worker)."""
    chosen: list[str] = []
    try:
        if shards:
            chosen += [constants.shard_queue(n) for n in parse_shards(shards, shard_count)]
        chosen += [validate_queue_name(q.strip()) for text in queues for q in text.split(",") if q.strip()]
    except ShardError as exc:
        raise ValidationError([str(exc)]) from None
    for slug in tenants:
        tenant = tx.catalog.find_tenant(slug)
        if not is_dedicated_queue(tenant.queue):
            raise ValidationError(
                [f"tenant {slug!r} is on the shared queue {tenant.queue}, consumed by its shard's pool; "
                 f"`tenant-worker tenant move {slug} --dedicated` first"]
            )  # fmt: skip
        chosen.append(tenant.queue)
    if not (shards or queues or tenants):
        chosen = [info.name for info in known_queues(tx, shard_count)]
    return list(dict.fromkeys(chosen))
