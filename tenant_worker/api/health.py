"""Probes: ``/healthz`` answers while the process serves requests (liveness: restart it if not);
``/readyz`` only while PostgreSQL and Redis answer too (readiness: send it no traffic if not). Neither
needs a key, and neither says more than which dependency failed."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from tenant_worker.adapters.db import ping_database
from tenant_worker.api.deps import services_of
from tenant_worker.api.problems import PROBLEM_JSON
from tenant_worker.bootstrap import Services

router = APIRouter(tags=["health"])
log = logging.getLogger("tenant_worker.api")


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    """Always ok while the event loop runs."""
    return {"status": "ok"}


def _checks(services: Services) -> dict[str, str]:
    results = {}
    for name, check in (("database", lambda: ping_database(services.settings.database_url)),
                        ("redis", services.redis.ping)):  # fmt: skip
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # any failure means "not ready"; the reason goes to the log only
            log.warning("readiness: %s unreachable (%s)", name, type(exc).__name__)
            results[name] = "unreachable"
    return results


@router.get(
    "/readyz",
    summary="Readiness: PostgreSQL and Redis answer",
    responses={503: {"description": "A dependency is unreachable", "content": {PROBLEM_JSON: {}}}},
)
async def readyz(services: Annotated[Services, Depends(services_of)]) -> Any:
    """200 with each dependency's state, or a 503 problem naming the unreachable ones."""
    results = await run_in_threadpool(_checks, services)
    down = sorted(name for name, state in results.items() if state != "ok")
    if not down:
        return {"status": "ok", **results}
    body = {"type": "about:blank", "title": "Not ready", "status": 503,
            "detail": f"unreachable: {', '.join(down)}", "checks": results}  # fmt: skip
    return JSONResponse(body, status_code=503, media_type=PROBLEM_JSON)
