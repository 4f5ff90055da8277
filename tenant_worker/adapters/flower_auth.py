"""Flower's ``/metrics`` behind its own authentication.

``celery -A tenant_worker.celery_app flower --basic-auth=...`` protects Flower's pages and API, but
Flower serves ``/metrics`` (per-task-name counts and runtimes, worker names) to anyone, on the port that
also takes control commands. tenant-worker's own metrics come from its processes, so nothing needs
Flower's without credentials: this makes ``/metrics`` ask for them like every other page (a
Prometheus that scrapes Flower sends basic auth). ``/healthcheck`` stays open for liveness probes.
"""

from __future__ import annotations

import sys
from typing import Any


def protect_flower_metrics() -> bool:
    """Require Flower's authentication on ``/metrics`` if Flower is loaded in this process (Celery's
    command line loads it, as a plugin, before it imports the app); True if it is protected."""
    monitor: Any = sys.modules.get("flower.views.monitor")
    if monitor is None:
        return False
    if not getattr(monitor.Metrics.get, "_tenant_worker_protected", False):
        from tornado import web

        protected = web.authenticated(monitor.Metrics.get)
        protected._tenant_worker_protected = True  # type: ignore[attr-defined]
        monitor.Metrics.get = protected
    return True
