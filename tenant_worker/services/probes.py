"""``tenant-worker probe worker|beat``: Kubernetes liveness and readiness without the broker.

A probe must be cheap and must say something about *this* process. ``celery inspect ping`` is neither:
it broadcasts through Redis to every worker and waits for the replies. Instead the process's heartbeat
thread touches a file every ``HEARTBEAT_INTERVAL`` seconds (adapters/heartbeat.py) and the probe reads
its age:

* live: the heartbeat file is younger than ``max_age``. Redis and PostgreSQL are not asked, so an
  outage, which workers and beat ride out by themselves, never gets healthy pods killed.
* ready: live, and Redis and PostgreSQL answer this pod now.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from tenant_worker.constants import HEARTBEAT_INTERVAL

# Three missed heartbeats: a busy process is late by a beat at most.
MAX_AGE_SECONDS = 3 * HEARTBEAT_INTERVAL


def probe(
    kind: str, age: float | None, checks: Mapping[str, Callable[[], None]], max_age: float = MAX_AGE_SECONDS
) -> list[str]:
    """The problems found (none: healthy). ``age`` is the heartbeat file's, None when there is none;
    ``checks`` raise when their service does not answer."""
    problems = []
    if age is None:
        problems.append(f"{kind}: no heartbeat yet (not started, or stopped)")
    elif age > max_age:
        problems.append(f"{kind}: last heartbeat {age:.0f} s ago (more than {max_age:.0f} s)")
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:  # a probe reports, whatever the failure
            problems.append(f"{name}: {exc}")
    return problems
