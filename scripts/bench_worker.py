"""``tenant-worker`` with the MessageBird client's connection pool chosen for a benchmark run.

    python scripts/bench_worker.py urllib3 worker --shards 0-15 ...

``pool`` runs the worker as shipped (:mod:`tenant_worker.adapters.http_pool`); ``urllib3`` swaps in
``bench_http_urllib3.Urllib3Pool``, same interface and outcomes, so
``bench_dispatch.py --http-client both`` can compare the two in one run.
"""

from __future__ import annotations

import sys

from bench_http_urllib3 import Urllib3Pool

from tenant_worker.adapters import messagebird
from tenant_worker.cli import main

HTTP_CLIENTS = ("pool", "urllib3")

if __name__ == "__main__":
    client = sys.argv.pop(1)
    if client not in HTTP_CLIENTS:
        sys.exit(f"first argument must be one of {HTTP_CLIENTS}, got {client!r}")
    if client == "urllib3":
        messagebird.ConnectionPool = Urllib3Pool  # type: ignore[attr-defined,assignment]
    sys.exit(main())
