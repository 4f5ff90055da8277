"""Tenants' daily sweep schedules: the tenants table says what they should be, beat's store holds them.

The database row is the source of truth (time zone, ``send_time``, status, ``scheduled``); every
change here writes the row first and then the store entry, and :meth:`ScheduleService.sync`
repairs whatever disagrees (missing entries, orphans, drifted times or queues). Sync runs when beat
becomes leader and every 15 minutes, so the two never disagree for long.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from tenant_worker.domain.localtime import SendingWindow, format_hhmm, next_local_runs
from tenant_worker.domain.model import TenantStatus, ValidationError, is_valid_timezone
from tenant_worker.domain.ports import SYSTEM_CLOCK, Clock, ScheduleStore, StoredSchedule
from tenant_worker.domain.records import Tenant
from tenant_worker.domain.storage import UnitOfWorkFactory
from tenant_worker.domain.windows import WindowsError, normalize_windows


def queue_for_tenant(tenant: Tenant) -> str:
    """The queue a tenant's sweep task goes to: the one place that decides it.

    The tenant's own (shard or dedicated) queue, so a tenant's sweep runs on the pool that sends
    for it; `schedule sync` re-points the entry after a `tenant move`.
    """
    return tenant.queue


@dataclass(frozen=True)
class Desired:
    """The entry a tenant row calls for."""

    timezone: str
    send_time: dt.time
    queue: str
    enabled: bool

    @classmethod
    def of(cls, tenant: Tenant) -> Desired | None:
        """None when the tenant's schedule was removed on purpose."""
        if not tenant.scheduled:
            return None
        return cls(tenant.timezone, tenant.send_time, queue_for_tenant(tenant), tenant.status == TenantStatus.ACTIVE)

    def matches(self, stored: StoredSchedule) -> bool:
        """Whether ``stored`` is this entry, including its presence in (or absence from) the due set."""
        return (stored.timezone, stored.send_time, stored.queue, stored.enabled) == (
            self.timezone,
            self.send_time,
            self.queue,
            self.enabled,
        ) and (stored.due_at is not None) == self.enabled


@dataclass
class SyncReport:
    """What a reconciliation changed."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _iso(value: dt.datetime | None, tz: str | None = None) -> str | None:
    if value is None:
        return None
    return value.astimezone(zoneinfo.ZoneInfo(tz) if tz else dt.UTC).isoformat()


class ScheduleService:
    """List, show, change, pause, resume, remove, run and reconcile tenants' daily sweeps."""

    def __init__(self, uow: UnitOfWorkFactory, store: ScheduleStore, clock: Clock = SYSTEM_CLOCK) -> None:
        self.uow = uow
        self.store = store
        self.clock = clock

    def _tenant(self, slug: str) -> Tenant:
        with self.uow() as tx:
            return tx.catalog.find_tenant(slug)

    def apply(
        self, tenant: Tenant, now: dt.datetime | None = None, known: tuple[StoredSchedule | None] | None = None
    ) -> str:
        """Make the store match one tenant row; returns created/updated/removed/unchanged.
        ``known`` is the stored entry when the caller just read it (saves a round trip)."""
        desired = Desired.of(tenant)
        stored = known[0] if known is not None else self.store.get(tenant.slug)
        if desired is None:
            return "removed" if self.store.delete(tenant.slug) else "unchanged"
        if stored is not None and desired.matches(stored):
            return "unchanged"
        now = now or self.clock.now()
        self.store.put(tenant.slug, desired.timezone, desired.send_time, desired.queue, desired.enabled, now)
        return "created" if stored is None else "updated"

    def sync(self, now: dt.datetime | None = None) -> SyncReport:
        """Create missing entries, fix drifted ones, delete orphans (entries with no tenant)."""
        with self.uow() as tx:
            tenants = tx.catalog.list_tenants()
        stored = self.store.all()
        report = SyncReport()
        now = now or self.clock.now()
        for tenant in tenants:
            desired, current = Desired.of(tenant), stored.pop(tenant.slug, None)
            if desired is None:
                if current is not None:
                    self.store.delete(tenant.slug)
                    report.removed.append(tenant.slug)
                else:
                    report.unchanged += 1
            elif current is None or not desired.matches(current):
                self.store.put(tenant.slug, desired.timezone, desired.send_time, desired.queue, desired.enabled, now)
                (report.created if current is None else report.updated).append(tenant.slug)
            else:
                report.unchanged += 1
        for orphan in stored:
            self.store.delete(orphan)
            report.removed.append(orphan)
        return report

    def describe(self, tenant: Tenant, stored: StoredSchedule | None) -> dict[str, Any]:
        """JSON-ready view of one schedule: next run in UTC and local time, last run, state."""
        desired = Desired.of(tenant)
        state = "removed" if desired is None else ("active" if desired.enabled else "paused")
        next_run = stored.due_at if stored is not None and stored.enabled else None
        return {
            "tenant": tenant.slug,
            "timezone": tenant.timezone,
            "send_time": format_hhmm(tenant.send_time),
            "sending_window": f"{format_hhmm(tenant.window_start)}-{format_hhmm(tenant.window_end)}",
            "windows": list(tenant.ordered_windows),
            "state": state,
            "queue": stored.queue if stored else None,
            "next_run_utc": _iso(next_run),
            "next_run_local": _iso(next_run, tenant.timezone),
            "last_run_utc": _iso(stored.last_run_at if stored else None),
            "last_run_local": _iso(stored.last_run_at if stored else None, tenant.timezone),
            "in_sync": (stored is None) if desired is None else (stored is not None and desired.matches(stored)),
        }

    def list_all(self) -> list[dict[str, Any]]:
        """Every tenant's schedule."""
        with self.uow() as tx:
            tenants = tx.catalog.list_tenants()
        stored = self.store.all()
        return [self.describe(t, stored.get(t.slug)) for t in tenants]

    def show(self, slug: str) -> dict[str, Any]:
        """One tenant's schedule."""
        return self.describe(self._tenant(slug), self.store.get(slug))

    def upcoming(self, slug: str, start: dt.datetime, count: int) -> list[dict[str, str]]:
        """The next ``count`` runs after ``start`` (naive means tenant-local), in UTC and local time."""
        tenant = self._tenant(slug)
        if start.tzinfo is None:
            start = start.replace(tzinfo=zoneinfo.ZoneInfo(tenant.timezone))
        runs = next_local_runs(start, tenant.timezone, tenant.send_time, count)
        return [{"utc": _iso(r) or "", "local": _iso(r, tenant.timezone) or ""} for r in runs]

    def set_time(self, slug: str, send_time: dt.time, timezone: str | None = None) -> dict[str, Any]:
        """Change the local send time (and optionally the zone); re-creates a removed schedule."""
        if timezone is not None and not is_valid_timezone(timezone):
            raise ValidationError([f"time zone {timezone!r} is not an IANA time zone (e.g. Europe/Amsterdam)"])
        with self.uow() as tx:
            tenant = tx.catalog.find_tenant(slug)
            tenant = replace(tenant, send_time=send_time, scheduled=True, timezone=timezone or tenant.timezone)
            tx.catalog.save_tenant(tenant)
        self.apply(tenant)
        return self.show(slug)

    def update(
        self,
        slug: str,
        send_time: dt.time | None = None,
        timezone: str | None = None,
        windows: tuple[int, ...] | None = None,
        sending_window: SendingWindow | None = None,
    ) -> dict[str, Any]:
        """Change any of the send time, zone, reminder windows and sending window (None: keep it),
        validated together (the send time must fall inside the sending window, or its reminders would
        wait every day), then re-point beat's entry; re-creates a removed schedule."""
        problems = []
        if timezone is not None and not is_valid_timezone(timezone):
            problems.append(f"time zone {timezone!r} is not an IANA time zone (e.g. Europe/Amsterdam)")
        if windows is not None:
            try:
                windows = normalize_windows(windows)
            except WindowsError as exc:
                problems.append(str(exc))
        with self.uow() as tx:
            tenant = tx.catalog.find_tenant(slug)
            window = sending_window or tenant.sending_window
            changed = replace(
                tenant,
                send_time=send_time or tenant.send_time,
                timezone=timezone or tenant.timezone,
                windows=windows or tenant.windows,
                window_start=window.start,
                window_end=window.end,
                scheduled=True,
            )
            if not window.contains(changed.send_time):
                problems.append(
                    f"send time {format_hhmm(changed.send_time)} is outside the sending window {window}: "
                    "its reminders would wait for the window every day"
                )
            if problems:
                raise ValidationError(problems)
            tx.catalog.save_tenant(changed)
        self.apply(changed)
        return self.show(slug)

    def _set_state(self, slug: str, status: TenantStatus | None, scheduled: bool) -> Tenant:
        with self.uow() as tx:
            tenant = tx.catalog.find_tenant(slug)
            tenant = replace(tenant, status=status.value if status else tenant.status, scheduled=scheduled)
            tx.catalog.save_tenant(tenant)
        self.apply(tenant)
        return tenant

    def pause(self, slug: str) -> dict[str, Any]:
        """Stop the tenant's sweeps; its data, entry and last run are kept."""
        self._set_state(slug, TenantStatus.PAUSED, True)
        return self.show(slug)

    def resume(self, slug: str) -> dict[str, Any]:
        """Sweep again from the next send time (a run missed while paused is caught up once)."""
        self._set_state(slug, TenantStatus.ACTIVE, True)
        return self.show(slug)

    def remove(self, slug: str) -> dict[str, Any]:
        """Delete the entry (no key left behind) and keep it deleted until ``set``/``resume``."""
        self._set_state(slug, None, False)
        return self.show(slug)

    def run_now(self, slug: str) -> str:
        """Publish the tenant's sweep at once; quiet hours still hold its SMS back at night."""
        return self.store.publish_sweep(slug, queue_for_tenant(self._tenant(slug)))
