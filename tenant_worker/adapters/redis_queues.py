"""Queue depths read straight from the broker's Redis lists (what an autoscaler looks at).

kombu's Redis transport stores a queue as one list per priority step: the queue's own name for
priority 0 and ``<queue>\\x06\\x16<step>`` for steps 3, 6 and 9 (``Channel._q_for_pri``). tenant-worker
publishes without priorities, so everything lands in the first list, but a depth that ignored the
others would hide a message someone published with a priority; all four are summed. Messages a
worker has reserved (prefetched or waiting for a retry countdown) are not in any list: they sit in
the ``unacked`` hash until acknowledged, and are reported separately. So are the messages workers
discarded as malformed, counted per queue and reason.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis

from tenant_worker import constants

UNACKED_KEY = "unacked"


def queue_keys(queue: str, steps: Sequence[int] = constants.KOMBU_PRIORITY_STEPS) -> list[str]:
    """Every Redis list kombu may use for ``queue``."""
    return [queue if step == 0 else f"{queue}{constants.KOMBU_PRIORITY_SEPARATOR}{step}" for step in steps]


def queue_depths(client: redis.Redis, queues: Sequence[str]) -> dict[str, int]:
    """Messages waiting in each queue (all priority sub-lists), in one round trip."""
    with client.pipeline(transaction=False) as pipe:
        for queue in queues:
            for key in queue_keys(queue):
                pipe.llen(key)
        lengths = pipe.execute()
    steps = len(constants.KOMBU_PRIORITY_STEPS)
    return {queue: sum(int(n) for n in lengths[i * steps : (i + 1) * steps]) for i, queue in enumerate(queues)}


def reserved_count(client: redis.Redis) -> int:
    """Messages delivered to workers and not yet acknowledged (running, prefetched, or counting down)."""
    return int(client.hlen(UNACKED_KEY))


def count_discarded(client: redis.Redis, queue: str, reason: str) -> None:
    """Count one message discarded from ``queue`` because of ``reason``."""
    client.hincrby(constants.DISCARDED_MESSAGES_KEY, f"{queue}:{reason}", 1)


def discarded_counts(client: redis.Redis) -> dict[str, dict[str, int]]:
    """Messages discarded as malformed so far: ``{queue: {reason: count}}``."""
    counts: dict[str, dict[str, int]] = {}
    for field, value in client.hgetall(constants.DISCARDED_MESSAGES_KEY).items():
        text = field.decode() if isinstance(field, bytes) else field
        queue, _, reason = text.rpartition(":")
        counts.setdefault(queue, {})[reason] = int(value)
    return counts
