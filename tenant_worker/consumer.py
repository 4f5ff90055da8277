"""The worker's consumer: Celery's own, reconnecting to a Redis that went away every second or two.

After losing the broker, Celery's consumer reconnects through ``kombu.Connection.ensure_connection``
with kombu's default intervals: 2 s, then 2 s more at each attempt, up to 30 s. After a 40-second
Redis restart the worker therefore sat idle for up to 14 s more, and after a long outage for up to
30 s; ``broker_connection_max_retries`` (100 by default) even made it give up for good after about 45
minutes. Celery has no setting for these intervals, so this consumer passes its own
(:data:`RECONNECT_INTERVALS`) and otherwise leaves Celery's connection handling as it is. It also logs
only the 1st, 2nd, 4th, 8th... failed attempt, so a long outage costs a handful of lines, not one
every two seconds.

``worker_consumer`` in ``celery_app.py`` selects this class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery.worker.consumer.consumer import Consumer as CeleryConsumer

# kombu's ensure_connection arguments: the first retry after 1 s, then every 2 s, however long the
# outage: the worker consumes again at most 2 s after Redis answers, for one connect attempt (a
# refused or timed-out TCP connect) every 2 s while it does not.
RECONNECT_INTERVALS = {"interval_start": 1.0, "interval_step": 1.0, "interval_max": 2.0}


class Consumer(CeleryConsumer):  # type: ignore[misc]
    """Celery's consumer with short, bounded reconnect intervals and fewer log lines per outage."""

    def ensure_connected(self, conn: Any) -> Any:
        """Celery's ``ensure_connected`` (its retry settings, messages and shutdown checks), with
        :data:`RECONNECT_INTERVALS` instead of kombu's defaults. ``conn`` is a ``kombu.Connection``."""
        ensure = conn.ensure_connection

        def ensure_connection(
            errback: Callable[[Exception, float], None] | None = None, max_retries: int | None = None, **kwargs: Any
        ) -> Any:
            return ensure(_sparse(errback), max_retries, **{**kwargs, **RECONNECT_INTERVALS})

        # Shadow the method on this connection object only, for the duration of Celery's call.
        conn.ensure_connection = ensure_connection
        try:
            return super().ensure_connected(conn)
        finally:
            del conn.ensure_connection


def _sparse(errback: Callable[[Exception, float], None] | None) -> Callable[[Exception, float], None] | None:
    """Pass on only the 1st, 2nd, 4th, 8th... call: Celery's "Cannot connect ... Trying again" line
    stays, but a ten-minute outage logs it 9 times instead of 300."""
    if errback is None:
        return None
    calls = 0

    def sparse(exc: Exception, interval: float) -> None:
        nonlocal calls
        calls += 1
        if calls & (calls - 1) == 0:
            errback(exc, interval)

    return sparse
