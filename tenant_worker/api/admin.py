"""Admin routes: tenants (create, list, get, offboard, move). Admin keys only (``admin_scope``).

Thin handlers over the same services as ``tenant-worker tenant ...`` (``cli_tenant``, ``cli_onboard``):
each parses its body, calls one service, and answers the same JSON the CLI prints with ``--json``.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field
from redis.exceptions import RedisError

from tenant_worker.api.deps import admin_scope, services_of
from tenant_worker.api.problems import Problem
from tenant_worker.bootstrap import Services
from tenant_worker.domain.localtime import SendingWindow, parse_hhmm, parse_window
from tenant_worker.domain.model import DEFAULT_SEND_TIME, TenantSpec
from tenant_worker.domain.sms_limits import DEFAULT_MAX_SEGMENTS
from tenant_worker.domain.windows import DEFAULT_WINDOWS
from tenant_worker.services import onboarding, sharding, tenants

router = APIRouter(prefix="/v1/tenants", tags=["admin: tenants"], dependencies=[Depends(admin_scope)])
ServicesDep = Annotated[Services, Depends(services_of)]
log = logging.getLogger("tenant_worker.api")


class TenantIn(BaseModel):
    """A new tenant, as ``tenant-worker tenant create`` takes it."""

    slug: str = Field(examples=["acme"])
    name: str = Field(examples=["Acme Fiber"])
    timezone: str = Field(examples=["Europe/Amsterdam"], description="IANA time zone")
    originator: str = Field(examples=["AcmeFiber"], description="sender: <=11 letters/digits or an E.164 number")
    locale: str = "en"
    windows: list[int] = Field(default=list(DEFAULT_WINDOWS), description="days before expiry")
    template: str | None = Field(default=None, description="SMS template (default: the built-in one)")
    send_time: str = Field(default=f"{DEFAULT_SEND_TIME:%H:%M}", description="local HH:MM of the daily sweep")
    sending_window: str = Field(default=str(SendingWindow()), description="local hours SMS may go out")
    dedicated: bool = Field(default=False, description="its own queue and worker pool")
    rate_per_second: float | None = None
    max_segments: int = DEFAULT_MAX_SEGMENTS

    def spec(self) -> TenantSpec:
        """The domain's spec (validated by the service); a malformed time is a 422 problem."""
        try:
            send_time, window = parse_hhmm(self.send_time), parse_window(self.sending_window)
        except ValueError as exc:
            raise Problem(422, "Invalid input", str(exc)) from None
        return TenantSpec(
            self.slug, self.name, self.timezone, self.originator, self.locale, tuple(self.windows),
            send_time=send_time, sending_window=window, dedicated=self.dedicated,
            rate_per_second=self.rate_per_second, max_segments=self.max_segments,
        )  # fmt: skip


class MoveIn(BaseModel):
    """Where to move a tenant: exactly one of a shard number or its dedicated queue."""

    shard: int | None = None
    dedicated: bool = False


@router.post("", status_code=201, summary="Create a tenant and its default template and schedule")
def create_tenant(body: TenantIn, services: ServicesDep, response: Response) -> dict[str, Any]:
    """Like ``tenant create``; the schedule is ``pending sync`` if Redis did not answer (beat creates it)."""
    with services.uow() as tx:
        row = tenants.create_tenant(tx, body.spec(), body.template, shard_count=services.settings.shard_count)
        description = tenants.describe_tenant(tx, row)
    try:
        description["schedule"] = services.schedules().apply(row)
    except (RedisError, OSError) as exc:
        log.warning("tenant %s created; schedule left to the next sync (%s)", row.slug, type(exc).__name__)
        description["schedule"] = "pending sync"
    response.headers["Location"] = f"/v1/tenants/{row.slug}"
    return description


@router.get("", summary="List tenants")
def list_tenants(services: ServicesDep) -> list[dict[str, Any]]:
    """Every tenant with its templates, by slug."""
    with services.uow() as tx:
        return [tenants.describe_tenant(tx, t) for t in tx.catalog.list_tenants()]


@router.get("/{slug}", summary="Get a tenant")
def get_tenant(slug: str, services: ServicesDep) -> dict[str, Any]:
    """One tenant with its templates (404 if there is none)."""
    with services.uow() as tx:
        return tenants.describe_tenant(tx, tx.catalog.find_tenant(slug))


@router.delete("/{slug}", summary="Offboard a tenant: pause, cancel pending, drain, remove its schedule")
def offboard_tenant(
    slug: str,
    services: ServicesDep,
    purge: Annotated[bool, Query(description="also delete the tenant and all its data")] = False,
    drain_timeout: Annotated[float, Query(ge=0, le=60, description="seconds to wait for sends in flight")] = 10,
) -> dict[str, Any]:
    """Like ``tenant offboard``. With ``purge``, data goes only once nothing is sending any more: if
    sends were still in flight after the wait, the answer is 409 and offboarding again finishes it."""
    with services.uow() as tx:
        tx.catalog.find_tenant(slug)  # 404 before anything changes
    report = onboarding.offboard(
        services.uow, services.schedule_store, slug, purge=purge, drain_timeout=drain_timeout, clock=services.clock
    )
    if purge and report.still_sending:
        detail = f"{report.still_sending} reminders still sending; data kept: offboard again once they finished"
        raise Problem(409, "Still sending", detail, report=report.as_dict())
    return report.as_dict()


@router.post("/{slug}/move", summary="Move a tenant to another shard or to its dedicated queue")
def move_tenant(slug: str, body: MoveIn, services: ServicesDep) -> dict[str, Any]:
    """Like ``tenant move``: queued work still runs exactly once; the daily sweep follows the tenant."""
    settings = services.settings
    with services.uow() as tx:
        tx.catalog.find_tenant(slug)
    target = sharding.target_queue(slug, body.shard, body.dedicated, settings.shard_count)
    try:
        report = sharding.move_tenant(
            services.uow, slug, target, services.queue, settings, services.announce_route_change
        )
        with services.uow() as tx:
            services.schedules().apply(tx.catalog.find_tenant(slug))
    except (RedisError, OSError) as exc:
        detail = (
            f"moved {slug} to {target}, but Redis is unreachable ({type(exc).__name__}): other processes pick "
            "the new queue up within a minute and the next sweep re-publishes its pending work"
        )
        raise Problem(503, "Moved, not announced", detail) from None
    return report.as_dict()
