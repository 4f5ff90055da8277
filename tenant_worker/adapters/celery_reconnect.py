"""The worker's consumer, reconnecting to a Redis that went away every second or two.

After losing the broker, Celery's consumer reconnects through ``kombu.Connection.ensure_connection``
with kombu's default intervals: 2 s, then 2 s more at each attempt, up to 30 s, so the later Redis
returns the longer the worker stays idle after it (measured: 1.9 s after a 10-second restart, 4.8 s
after a 25-second one; up to 30 s after a long outage). Celery has no setting for these intervals, so
this consumer passes its own (:data:`RECONNECT_INTERVALS`) and otherwise leaves Celery's connection
handling as it is. It also logs only the 1st, 2nd, 4th, 8th... failed attempt, so a long outage costs
a handful of lines rather than one every two seconds.

It extends the consumer that sets malformed messages aside (``adapters/celery_consumer.py``);
``worker_consumer`` in ``celery_app.py`` selects this class.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from tenant_worker.adapters.celery_consumer import Consumer as ScreeningConsumer

# kombu's ensure_connection arguments: the first retry after 1 s, then every 2 s however long the
# outage lasts. The worker consumes again at most 2 s after Redis answers, for one connection attempt
# (a refused or timed-out TCP connect) every 2 s while it does not.
RECONNECT_INTERVALS = {"interval_start": 1.0, "interval_step": 1.0, "interval_max": 2.0}

Errback = Callable[[Exception, float], None]
log = logging.getLogger(__name__)


class Consumer(ScreeningConsumer):
    """The screening consumer with short, bounded reconnect intervals and fewer lines per outage."""

    def ensure_connected(self, conn: Any) -> Any:
        """Celery's ``ensure_connected`` (its retry settings, messages and shutdown checks), with
        :data:`RECONNECT_INTERVALS` instead of kombu's defaults. ``conn`` is a ``kombu.Connection``."""
        ensure = conn.ensure_connection

        def ensure_connection(errback: Errback | None = None, max_retries: int | None = None, **kwargs: Any) -> Any:
            return ensure(sparse(errback), max_retries, **{**kwargs, **RECONNECT_INTERVALS})

        # Shadow the method on this connection object only, for the duration of Celery's call.
        conn.ensure_connection = ensure_connection
        try:
            return super().ensure_connected(conn)
        finally:
            del conn.ensure_connection

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        """Celery's handling of a lost broker, with the old connection closed safely.

        Celery closes the broken connection through ``ignore_errors``, which lets only connection
        errors pass. With a message delivered but not yet acknowledged (a task running when Redis
        died), kombu 5.7's Redis channel restores it while closing, through a transport whose client
        is already gone, and raises ``AttributeError``: Celery calls that an unrecoverable error and
        stops the worker (seen when Redis restarted while a recovery tick ran). Redis has those
        messages in its own unacked set anyway (restored after the visibility timeout), so a failed
        restore on the way out loses nothing: log it and go on reconnecting."""
        connection = self.connection
        if connection is not None:
            close = connection.close

            def close_safely() -> None:
                try:
                    close()
                except AttributeError as error:
                    log.warning("closing the lost broker connection failed (%r); reconnecting anyway", error)

            connection.close = close_safely
        super().on_connection_error_after_connected(exc)


def sparse(errback: Errback | None) -> Errback | None:
    """Pass on only the 1st, 2nd, 4th, 8th... call: Celery's "Cannot connect ... Trying again" line
    stays, but a ten-minute outage logs it 9 times instead of 300."""
    if errback is None:
        return None
    calls = 0

    def thinned(exc: Exception, interval: float) -> None:
        nonlocal calls
        calls += 1
        if calls & (calls - 1) == 0:
            errback(exc, interval)

    return thinned
