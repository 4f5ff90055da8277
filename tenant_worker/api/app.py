"""The ASGI application: routers, the auth and idempotency middleware, and problem+json errors.

``create_app(services)`` is all a server needs; ``tenant-worker api`` builds the services with
``bootstrap`` and serves the app with uvicorn. Each router module exposes ``router`` and is included
here with one line.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from tenant_worker.api import admin, dlr, health, keys, metrics, problems
from tenant_worker.api.auth import Guard
from tenant_worker.api.idempotency import Idempotency, document_header
from tenant_worker.bootstrap import Services

DESCRIPTION = """\
Manage tenant-worker over HTTP: tenants, their API keys and data. Authenticate every `/v1` call with
`Authorization: Bearer <key>`: an admin key (from `ADMIN_API_KEYS`) or a tenant's key (`twk_...`),
which sees only its own tenant. Send an `Idempotency-Key` header with POST, PUT and DELETE to make a
retry safe. Errors are `application/problem+json`.
"""


def create_app(services: Services) -> FastAPI:
    """The API on ``services`` (kept in ``app.state.services`` for the handlers)."""
    app = FastAPI(title="tenant-worker", version="1", description=DESCRIPTION)
    app.state.services = services
    problems.install(app, services.settings)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(admin.router)
    app.include_router(keys.router)
    app.include_router(dlr.router)
    # Added last = runs first: the Guard resolves the caller that Idempotency keys its answers by.
    app.add_middleware(Idempotency, store=services.idempotency)
    app.add_middleware(Guard, services=services)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with what the middleware adds to every route: problem+json errors and
    the ``Idempotency-Key`` header (built once, on the first request for it)."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        problems.document_problems(schema)
        document_header(schema)
        app.openapi_schema = schema
    return app.openapi_schema
