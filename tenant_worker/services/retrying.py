"""Running idempotent storage work until the database answers again (a failover takes seconds)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from tenant_worker.domain.backoff import RetryPolicy
from tenant_worker.domain.ports import Clock
from tenant_worker.domain.storage import StorageUnavailable, UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)
_T = TypeVar("_T")


def run_with_retry(
    uow: UnitOfWorkFactory, work: Callable[[UnitOfWork], _T], policy: RetryPolicy, clock: Clock, what: str
) -> _T:
    """Run ``work`` in one unit of work; if the connection drops, run it again in a fresh one with the
    policy's backoff, for up to ``policy.give_up_after`` seconds (then the error propagates). Only for
    idempotent work: the first try may have committed before the connection died."""
    deadline = clock.monotonic() + (policy.give_up_after or 0.0)
    attempt = 0
    while True:
        try:
            with uow() as tx:
                return work(tx)
        except StorageUnavailable as exc:
            attempt += 1
            delay = policy.delay(attempt)
            if clock.monotonic() + delay > deadline:
                raise
            log.warning("%s: %s; retrying in %.1f s", what, exc, delay)
            clock.sleep(delay)
