"""``tenant-worker`` with the MessageBird client's connection pool chosen for a benchmark run.

    python scripts/bench_worker.py urllib3 worker --shards 0-15 ...

``pool`` runs the worker as shipped (:mod:`tenant_worker.adapters.http_pool`); ``urllib3`` swaps in
``bench_http_urllib3.Urllib3Pool``, same interface and outcomes, so
``bench_dispatch.py --http-client both`` can compare the two in one run.

``BENCH_METRICS=off`` in the environment turns the Prometheus recording off (the send timing wrapper,
the batch histogram and the counters), so ``bench_dispatch.py --ops`` can measure what it costs.
"""

from __future__ import annotations

import os
import sys
import types
from typing import Any

from bench_http_urllib3 import Urllib3Pool

from tenant_worker import bootstrap, tasks
from tenant_worker.adapters import messagebird
from tenant_worker.cli import main


def without_metrics() -> None:
    """Replace every recorder the worker calls by a no-op."""

    def nothing(*_: Any, **__: Any) -> None:
        return None

    bootstrap.TimedGateway = lambda gateway: gateway  # type: ignore[assignment,misc]
    tasks.prometheus = types.SimpleNamespace(  # type: ignore[assignment]
        record_sms=nothing, record_repairs=nothing, serve=nothing, process_exited=nothing,
        BATCH_SECONDS=types.SimpleNamespace(observe=nothing),
    )  # fmt: skip


HTTP_CLIENTS = ("pool", "urllib3")

if __name__ == "__main__":
    client = sys.argv.pop(1)
    if client not in HTTP_CLIENTS:
        sys.exit(f"first argument must be one of {HTTP_CLIENTS}, got {client!r}")
    if client == "urllib3":
        messagebird.ConnectionPool = Urllib3Pool  # type: ignore[attr-defined,assignment]
    if os.environ.get("BENCH_METRICS") == "off":
        without_metrics()
    sys.exit(main())
