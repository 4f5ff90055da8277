"""``/metrics``: this API process's Prometheus metrics (status reports received by the webhook, the
process's own figures), in the text format. Like the probes it needs no key, so Prometheus needs no
credentials that could act on tenants; it names no tenant (bounded labels only). Keep it off the public
proxy: it is for the cluster's Prometheus. With ``api --workers N`` set PROMETHEUS_MULTIPROC_DIR, so any
worker process answers with the sum of all (README "Metrics")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from tenant_worker.adapters import prometheus
from tenant_worker.api.deps import services_of
from tenant_worker.bootstrap import Services

router = APIRouter(tags=["health"])


@router.get("/metrics", summary="Prometheus metrics of this API process", response_class=Response)
def metrics(services: Annotated[Services, Depends(services_of)]) -> Response:
    """The text exposition format (blocking file reads in multiprocess mode: a sync route, run in a thread)."""
    body, content_type = prometheus.exposition(services.settings.metrics_dir)
    return Response(body, media_type=content_type)
