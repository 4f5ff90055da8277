"""Onboarding and offboarding a tenant in one step (``tenant-worker tenant onboard|offboard``).

Onboarding validates the definition and the customers CSV completely before anything is committed
(the CSV through ``services.customers.sync_customers``, the import's own path). A bad CSV row is
written, with its reasons, to a rejects file next to the CSV (a report for whoever fixes the file,
not state); by default any rejected row aborts the onboarding with nothing written to the
database or Redis, and ``allow_rejects`` imports the good rows instead. Tenant, templates and
customers are written in one transaction; the RedBeat entry is written after it commits (if Redis
fails then, ``schedule sync`` - also run by beat - creates it). Re-running a definition changes
nothing; a changed one updates the tenant, and templates no longer in the file are deleted.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tenant_worker.adapters import csv_files
from tenant_worker.domain.localtime import next_local_run
from tenant_worker.domain.model import ReminderStatus, TenantStatus, ValidationError
from tenant_worker.domain.ports import SYSTEM_CLOCK, Clock, ScheduleStore
from tenant_worker.domain.records import Template, Tenant
from tenant_worker.domain.shards import is_dedicated_queue
from tenant_worker.domain.storage import UnitOfWork, UnitOfWorkFactory
from tenant_worker.services.customers import (
    ImportOptions,
    ImportRefused,
    RejectedRow,
    SourceRow,
    source_rows,
    sync_customers,
)
from tenant_worker.services.definitions import TenantDefinition
from tenant_worker.services.schedules import Desired, ScheduleService

Progress = Callable[[int, int], None]


class _DryRun(Exception):
    """Raised inside the transaction to roll a dry run back."""


@dataclass
class OnboardReport:
    """What onboarding did (or, in a dry run, would do)."""

    tenant: str
    created: bool = False
    changes: list[str] = field(default_factory=list)
    customers: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    rejects_file: str | None = None
    schedule: str = "unchanged"
    next_run_utc: str | None = None
    next_run_local: str | None = None
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def write_rejects(csv_path: Path, rejects: list[RejectedRow]) -> Path:
    """Write rejected rows with line numbers and reasons to ``<name>.rejects.csv`` next to the CSV,
    every cell escaped against formula injection (an operator opens it in a spreadsheet)."""
    target = csv_path.with_name(csv_path.stem + ".rejects.csv")
    columns = sorted({key for r in rejects for key in r.raw})
    rows = ([r.line, r.reason, *(r.raw.get(c, "") for c in columns)] for r in rejects)
    csv_files.write_csv(target, ["line", "reason", *columns], rows)
    return target


def customer_rows(customers_csv: Path) -> Iterator[SourceRow]:
    """The customers CSV's rows, read a line at a time; what makes the file unreadable as a whole
    (encoding, NUL byte, a field over the limit) is a :class:`ValidationError` naming the file."""
    try:
        yield from source_rows(csv_files.stream_rows(customers_csv))
    except ValidationError as exc:
        prefix = f"{customers_csv}: "
        problems = [p if p.startswith(prefix) else prefix + p for p in exc.problems]
        raise ValidationError([*problems, "nothing was imported"]) from None


_TENANT_FIELDS = (
    "name", "timezone", "locale", "originator", "send_time", "max_segments", "date_style", "normalize_text",
)  # fmt: skip


def _apply_tenant(tx: UnitOfWork, definition: TenantDefinition, report: OnboardReport, shard_count: int) -> Tenant:
    spec = definition.spec
    catalog = tx.catalog
    try:
        tenant = catalog.find_tenant(spec.slug)
    except ValidationError:
        tenant = catalog.create_tenant(spec, shard_count)
        report.created = True
        report.changes.append(f"create tenant {spec.slug}")
    if not report.created and is_dedicated_queue(tenant.queue) != spec.dedicated:
        # A move re-publishes queued work and tells every router cache: it has its own command.
        raise ValidationError(
            [f"tenant {spec.slug} is on queue {tenant.queue}; change its queue with `tenant-worker tenant move`"]
        )
    wanted: dict[str, Any] = {name: getattr(spec, name) for name in _TENANT_FIELDS}
    wanted |= {
        "windows": tuple(spec.windows),
        "window_start": spec.sending_window.start,
        "window_end": spec.sending_window.end,
        "status": TenantStatus.ACTIVE.value,
        "scheduled": True,
    }
    changed = {name: value for name, value in wanted.items() if getattr(tenant, name) != value}
    if changed:
        if not report.created:
            report.changes += [f"{name}: {getattr(tenant, name)!s} -> {value!s}" for name, value in changed.items()]
        tenant = replace(tenant, **changed)
        catalog.save_tenant(tenant)
    current = {(t.window_days, t.locale): t for t in catalog.templates(tenant.id)}
    for item in definition.templates:
        scope = (item.window, item.locale)
        existing = current.pop(scope, None)
        if existing is None or existing.body != item.body:
            catalog.save_template(tenant.id, Template(item.window, item.locale, item.body))
            if not report.created:
                verb = "add" if existing is None else "change"
                report.changes.append(f"{verb} template (window {item.window or 'any'}, locale {item.locale or 'any'})")
    for window, locale in current:
        catalog.delete_template(tenant.id, window, locale)
        if not report.created:
            report.changes.append(f"delete template (window {window or 'any'}, locale {locale or 'any'})")
    return tenant


def onboard(
    uow: UnitOfWorkFactory,
    store: ScheduleStore,
    definition: TenantDefinition,
    customers_csv: Path | None = None,
    region: str | None = None,
    *,
    shard_count: int,
    dry_run: bool = False,
    allow_rejects: bool = False,
    progress: Progress | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> OnboardReport:
    """Validate everything, then create/update tenant, templates and customers, then the schedule."""
    report = OnboardReport(definition.spec.slug, dry_run=dry_run)
    stored = store.get(definition.spec.slug)  # also: Redis must answer before the database is touched
    try:
        with uow() as tx:
            tenant = _apply_tenant(tx, definition, report, shard_count)
            if customers_csv is not None:
                _import_customers(tx, tenant.slug, customers_csv, region, allow_rejects, progress, report)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    desired = Desired.of(tenant)
    if dry_run:
        unchanged = stored is not None and desired is not None and desired.matches(stored)
        report.schedule = "unchanged" if unchanged else ("create" if stored is None else "update")
    else:
        report.schedule = ScheduleService(uow, store, clock).apply(tenant, known=(stored,))
    # A new entry first runs at the next send time; otherwise ask the store (it knows the last run).
    after = None if dry_run or report.schedule == "created" else store.get(report.tenant)
    zone = zoneinfo.ZoneInfo(tenant.timezone)
    run = after.due_at if after is not None and after.due_at is not None else None
    run = run or next_local_run(clock.now(), tenant.timezone, tenant.send_time)
    report.next_run_utc, report.next_run_local = run.isoformat(), run.astimezone(zone).isoformat()
    return report


@dataclass
class OffboardReport:
    """What offboarding did."""

    tenant: str
    waited_for_sending: int = 0
    still_sending: int = 0
    cancelled_pending: int = 0
    schedule_removed: bool = False
    purged: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def offboard(
    uow: UnitOfWorkFactory,
    store: ScheduleStore,
    slug: str,
    *,
    purge: bool = False,
    drain_timeout: float = 60,
    clock: Clock = SYSTEM_CLOCK,
) -> OffboardReport:
    """Pause, cancel pending reminders, wait for the sends in flight, remove the schedule; purge on
    request, and only once nothing is sending any more (``still_sending`` says what the wait left).

    Cancelling comes before waiting: ``pending -> skipped`` is atomic against a send task's
    ``pending -> sending`` claim, so once it ran no task (queued, a continuation, a retry) can start
    a send, and only the batches already sending remain: at most a few, each bounded by the HTTP
    timeouts. Waiting first would never end for a tenant with a backlog, whose finishing batches keep
    publishing the next ones. A send that ends in a retry puts its reminder back to ``pending``, so
    the cancel runs again after the wait.
    """
    service = ScheduleService(uow, store, clock)
    service.pause(slug)
    report = OffboardReport(slug)
    with uow() as tx:
        tenant_id = tx.catalog.find_tenant(slug).id
    report.cancelled_pending = _cancel_pending(uow, tenant_id)
    report.waited_for_sending = report.still_sending = _count_sending(uow, tenant_id)
    deadline = clock.monotonic() + drain_timeout
    while report.still_sending and clock.monotonic() < deadline:
        clock.sleep(0.2)
        report.still_sending = _count_sending(uow, tenant_id)
    report.cancelled_pending += _cancel_pending(uow, tenant_id)
    service.remove(slug)
    report.schedule_removed = store.get(slug) is None
    # Purging under a send would lose its outcome (the SMS went out, the ledger row is gone).
    if purge and report.still_sending == 0:
        with uow() as tx:
            tx.catalog.purge_tenant(tenant_id)
        report.purged = True
    return report


def _count_sending(uow: UnitOfWorkFactory, tenant_id: int) -> int:
    with uow() as tx:
        return tx.ledger(tenant_id).count_status(ReminderStatus.SENDING)


def _cancel_pending(uow: UnitOfWorkFactory, tenant_id: int) -> int:
    with uow() as tx:
        return tx.ledger(tenant_id).cancel_pending("tenant_offboarded")


def _import_customers(
    tx: UnitOfWork,
    slug: str,
    customers_csv: Path,
    region: str | None,
    allow_rejects: bool,
    progress: Progress | None,
    report: OnboardReport,
) -> None:
    """``services.customers.sync_customers`` on the CSV, in the onboarding's transaction; rejected
    rows go to ``<name>.rejects.csv`` next to it (and refuse everything unless ``allow_rejects``)."""
    options = ImportOptions(allow_rejects=allow_rejects, region=region)
    try:
        result = sync_customers(tx, slug, customer_rows(customers_csv), options)
    except ImportRefused as refused:
        rejects = refused.report.rejects
        target = write_rejects(customers_csv, rejects)
        report.rejected, report.rejects_file = len(rejects), str(target)
        problems = [f"{customers_csv}: line {r.line}: {r.reason}" for r in rejects]
        raise ValidationError([*problems, f"rejected rows written to {target}; nothing was imported"]) from None
    if result.rejects:
        report.rejected, report.rejects_file = result.rejected, str(write_rejects(customers_csv, result.rejects))
    report.customers = asdict(result.counts)
    if progress is not None:
        progress(result.rows, result.rows)
