"""Probes: ``/healthz`` answers while the process serves requests (liveness: restart it if not);
``/readyz`` only while PostgreSQL and Redis answer too (readiness: send it no traffic if not). Neither
needs a key, and neither says more than which dependency failed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from tenant_worker.adapters.db import ping_database
from tenant_worker.api.deps import services_of
from tenant_worker.api.problems import PROBLEM_JSON
from tenant_worker.bootstrap import Services

router = APIRouter(tags=["health"])
log = logging.getLogger("tenant_worker.api")
# A dependency slower than this is "unreachable": the probe answers within the orchestrator's timeout
# (3 s in infra/k8s/api.yaml) even when a host drops packets and a connect would hang for minutes.
CHECK_TIMEOUT_SECONDS = 2.0


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    """Always ok while the event loop runs."""
    return {"status": "ok"}


async def _check(name: str, check: Callable[[], Any], results: dict[str, str]) -> None:
    """Run one blocking check in a thread, abandoned (not waited for) after the timeout."""
    results[name] = "unreachable"
    try:
        with anyio.fail_after(CHECK_TIMEOUT_SECONDS):
            await anyio.to_thread.run_sync(check, abandon_on_cancel=True)
        results[name] = "ok"
    except Exception as exc:  # any failure means "not ready"; the reason goes to the log only
        log.warning("readiness: %s unreachable (%s)", name, type(exc).__name__)


async def _checks(services: Services) -> dict[str, str]:
    results: dict[str, str] = {}
    async with anyio.create_task_group() as group:
        group.start_soon(_check, "database", lambda: ping_database(services.settings.database_url), results)
        group.start_soon(_check, "redis", services.redis.ping, results)
    return dict(sorted(results.items()))


@router.get(
    "/readyz",
    summary="Readiness: PostgreSQL and Redis answer",
    responses={503: {"description": "A dependency is unreachable", "content": {PROBLEM_JSON: {}}}},
)
async def readyz(services: Annotated[Services, Depends(services_of)]) -> Any:
    """200 with each dependency's state, or a 503 problem naming the unreachable ones."""
    results = await _checks(services)
    down = sorted(name for name, state in results.items() if state != "ok")
    if not down:
        return {"status": "ok", **results}
    body = {"type": "about:blank", "title": "Not ready", "status": 503,
            "detail": f"unreachable: {', '.join(down)}", "checks": results}  # fmt: skip
    return JSONResponse(body, status_code=503, media_type=PROBLEM_JSON)
