"""The app uvicorn serves: built from the environment, for ``tenant-worker api --workers N`` (each
worker process imports this factory and bootstraps its own services, after the fork)."""

from __future__ import annotations

from fastapi import FastAPI

from tenant_worker.adapters.sentry import init_sentry
from tenant_worker.api.app import create_app
from tenant_worker.bootstrap import bootstrap


def build() -> FastAPI:
    """A new app on services from the environment's settings (Sentry on if ``SENTRY_DSN`` is set)."""
    services = bootstrap()
    init_sentry(services.settings)
    return create_app(services)
