"""The worker's reconnect log thinning: a long Redis outage logs a handful of lines, the first at once."""

from __future__ import annotations

from tenant_worker.adapters.celery_reconnect import RECONNECT_INTERVALS, sparse


def test_only_the_first_second_fourth_eighth_failed_attempt_is_logged():
    logged: list[float] = []
    errback = sparse(lambda exc, interval: logged.append(interval))
    assert errback is not None
    for attempt in range(1, 301):  # ten minutes of attempts every 2 s
        errback(ConnectionError("refused"), float(attempt))
    assert logged == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]


def test_no_errback_stays_none():
    assert sparse(None) is None


def test_the_worker_retries_at_least_every_two_seconds():
    assert RECONNECT_INTERVALS["interval_start"] <= RECONNECT_INTERVALS["interval_max"] <= 2.0
