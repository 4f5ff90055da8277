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

from collections.abc import Callable
from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tenant_worker.adapters.celery_consumer import Consumer as ScreeningConsumer
from tenant_worker.domain.backoff import BROKER_RECONNECT

# kombu's ensure_connection arguments (domain.backoff.BROKER_RECONNECT): the first retry after 1 s,
# then every 2 s however long the outage lasts. The worker consumes again at most 2 s after Redis
# answers, for one connection attempt (a refused or timed-out TCP connect) every 2 s while it does not.
# The number of retries stays Celery's (broker_connection_max_retries).
RECONNECT_INTERVALS = {name: value for name, value in BROKER_RECONNECT.kombu_options().items() if name != "max_retries"}

Errback = Callable[[Exception, float], None]
_connparams: Callable[..., Any] = kombu_redis.Channel._connparams


def _closed_channel_is_a_connection_error(channel: Any, asynchronous: bool = False) -> Any:
    """kombu 5.7's Redis channel, used after its connection was closed, fails with ``AttributeError``
    (the transport's client is gone) where it means "not connected". That happens whenever Redis dies
    while a task runs: closing the lost connection restores the task's unacked message, and the task's
    ack arrives after the close. Celery tolerates connection errors there (it logs them and
    reconnects; the message stays in Redis's unacked set, redelivered after the visibility timeout)
    but takes ``AttributeError`` for an unrecoverable error and stops the worker. Raising the
    connection error it means keeps the worker up; seen in the Redis restart tests.

    A publisher meets the same when a publish is retried on a channel its connection already closed
    (``channel.connection`` is None then), as a Sentinel failover showed: a connection error lets
    kombu's retry reconnect, or ends in the error ``CeleryReminderQueue`` reports. ``celery_app``
    imports this module, so every process that publishes has the fix."""
    if channel.connection is None or channel.connection.client is None:
        raise RedisConnectionError("the broker connection was closed")
    return _connparams(channel, asynchronous)


setattr(kombu_redis.Channel, "_connparams", _closed_channel_is_a_connection_error)  # noqa: B010


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
