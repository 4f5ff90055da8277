"""Tenant routes for the daily sweep's schedule (the RedBeat schedule API over HTTP): show it, change
its time, zone, reminder windows and sending window, pause, resume, and run the sweep now.

Every change goes through ``services.schedules.ScheduleService``, as ``tenant-worker schedule ...``:
the tenants row first, then beat's RedBeat entry, so the next run shown is the one beat will fire.
Times are the tenant's wall clock (``HH:MM``); the next run is given in UTC and tenant-local time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from redis.exceptions import RedisError

from tenant_worker.api.deps import TenantScope, services_of, tenant_scope
from tenant_worker.api.problems import Problem
from tenant_worker.bootstrap import Services
from tenant_worker.domain.localtime import parse_hhmm, parse_window

router = APIRouter(prefix="/v1/tenants/{slug}/schedule", tags=["tenant: schedule"])
ScopeDep = Annotated[TenantScope, Depends(tenant_scope)]
ServicesDep = Annotated[Services, Depends(services_of)]
_T = TypeVar("_T")


class ScheduleOut(BaseModel):
    """The tenant's daily sweep: when (local), where it stands, and its next run in UTC and local time
    (``null`` while paused)."""

    timezone: str
    send_time: str = Field(description="local HH:MM of the daily sweep")
    sending_window: str = Field(description="local hours SMS may go out, e.g. 08:00-21:00")
    windows: list[int] = Field(description="days before expiry a reminder is sent")
    state: str = Field(description="active, paused or removed")
    paused: bool
    next_run_utc: str | None
    next_run_local: str | None
    last_run_utc: str | None
    last_run_local: str | None


class ScheduleIn(BaseModel):
    """What to change; a field left out keeps its value. Validated together (the send time must be
    inside the sending window)."""

    send_time: str | None = Field(default=None, examples=["09:30"])
    timezone: str | None = Field(default=None, examples=["Europe/Amsterdam"])
    windows: list[int] | None = Field(default=None, examples=[[7, 3, 1]])
    sending_window: str | None = Field(
        default=None, examples=["08:00-21:00"], description="local hours; 00:00-00:00: no quiet hours"
    )


class RunOut(BaseModel):
    """The sweep task published by run-now."""

    task_id: str


def _beat(action: Callable[[], _T]) -> _T:
    """Run a schedule operation; an unreachable Redis (beat's store) is 503, to be retried."""
    try:
        return action()
    except (RedisError, OSError):
        raise Problem(503, "Service unavailable", "the schedule store (Redis) is unreachable; retry later") from None


def _out(shown: dict[str, Any]) -> ScheduleOut:
    return ScheduleOut(**{name: shown[name] for name in ScheduleOut.model_fields if name != "paused"},
                       paused=shown["state"] == "paused")  # fmt: skip


@router.get("", summary="The tenant's schedule and next run (UTC and local)")
def get_schedule(scope: ScopeDep, services: ServicesDep) -> ScheduleOut:
    """As ``tenant-worker schedule show``."""
    return _out(_beat(lambda: services.schedules().show(scope.slug)))


@router.put("", summary="Change the send time, time zone, reminder windows or sending window")
def put_schedule(body: ScheduleIn, scope: ScopeDep, services: ServicesDep) -> ScheduleOut:
    """Beat's entry moves at once (a removed schedule is re-created); the answer shows the new next run."""
    try:
        send_time = parse_hhmm(body.send_time) if body.send_time is not None else None
        window = parse_window(body.sending_window) if body.sending_window is not None else None
    except ValueError as exc:
        raise Problem(422, "Invalid input", str(exc)) from None
    windows = tuple(body.windows) if body.windows is not None else None
    return _out(_beat(lambda: services.schedules().update(scope.slug, send_time, body.timezone, windows, window)))


@router.post("/pause", summary="Stop the daily sweeps (data and schedule kept)")
def pause(scope: ScopeDep, services: ServicesDep) -> ScheduleOut:
    """Nothing is claimed or sent for the tenant until it is resumed."""
    return _out(_beat(lambda: services.schedules().pause(scope.slug)))


@router.post("/resume", summary="Sweep again from the next send time")
def resume(scope: ScopeDep, services: ServicesDep) -> ScheduleOut:
    """A run missed while paused is caught up once."""
    return _out(_beat(lambda: services.schedules().resume(scope.slug)))


@router.post("/run-now", status_code=202, summary="Publish the tenant's sweep now")
def run_now(scope: ScopeDep, services: ServicesDep) -> RunOut:
    """Quiet hours still hold its SMS back outside the sending window. A paused tenant is refused
    (409): its sweep would claim nothing."""
    schedules = services.schedules()
    if _beat(lambda: schedules.show(scope.slug))["state"] == "paused":
        raise Problem(409, "Conflict", "the tenant is paused: resume its schedule first")
    return RunOut(task_id=_beat(lambda: schedules.run_now(scope.slug)))
