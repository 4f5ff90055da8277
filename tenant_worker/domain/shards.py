"""The shard map: which queue a tenant's work goes to, and how operators name sets of queues.

Pure functions (standard library only). :func:`shard_for` is a frozen contract: tenants store the queue
it gave them when they were created, and the migration that introduced queues back-filled existing
tenants with it, so changing this function would only affect tenants created afterwards.
"""

from __future__ import annotations

import hashlib
import re

from tenant_worker import constants

_SHARD_QUEUE = re.compile(re.escape(constants.SHARD_QUEUE_PREFIX) + r"(\d{2,})")
# Queue names end up in Redis keys, compose files and Kubernetes labels: keep them boring.
_QUEUE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")


class ShardError(ValueError):
    """A shard number, range or queue name is not valid; the message says why."""


def shard_for(tenant_id: int, shard_count: int) -> int:
    """A stable shard number in ``[0, shard_count)`` for a tenant id.

    BLAKE2b rather than ``hash()``: Python salts ``hash()`` of strings per process and its integer hash
    is the identity, which would put consecutive tenants on consecutive shards in lockstep.
    """
    if shard_count < 1:
        raise ShardError(f"shard count must be at least 1, not {shard_count}")
    digest = hashlib.blake2b(str(tenant_id).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shard_count


def queue_for_new_tenant(tenant_id: int, slug: str, shard_count: int, *, dedicated: bool = False) -> str:
    """The queue a tenant gets when it is created: its own for large tenants, else its hash shard."""
    if dedicated:
        return constants.dedicated_queue(slug)
    return constants.shard_queue(shard_for(tenant_id, shard_count))


def shard_queue(shard: int, shard_count: int) -> str:
    """The queue of shard ``shard``, which must exist under ``shard_count``."""
    if not 0 <= shard < shard_count:
        raise ShardError(f"shard {shard} does not exist: SHARD_COUNT is {shard_count} (shards 0-{shard_count - 1})")
    return constants.shard_queue(shard)


def all_shard_queues(shard_count: int) -> list[str]:
    """Every shard queue, in order."""
    return [constants.shard_queue(n) for n in range(shard_count)]


def parse_shards(text: str, shard_count: int) -> list[int]:
    """Parse ``0-7``, ``3`` or ``0-3,8,10-11`` into sorted shard numbers, each below ``shard_count``."""
    shards: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise ShardError(f"{part!r} is not a shard or a range like 0-7")
        low, high = int(match[1]), int(match[2] or match[1])
        if low > high:
            raise ShardError(f"shard range {part!r} runs backwards")
        if high >= shard_count:
            raise ShardError(f"shard {high} does not exist: SHARD_COUNT is {shard_count} (shards 0-{shard_count - 1})")
        shards.update(range(low, high + 1))
    return sorted(shards)


def shard_of_queue(queue: str) -> int | None:
    """The shard number of a shard queue name, or None for any other queue."""
    match = _SHARD_QUEUE.fullmatch(queue)
    return int(match[1]) if match else None


def is_dedicated_queue(queue: str) -> bool:
    """True for ``reminders.tenant.<slug>`` queues."""
    return queue.startswith(constants.DEDICATED_QUEUE_PREFIX)


def validate_queue_name(queue: str) -> str:
    """Return ``queue`` if it is a usable queue name, else raise :class:`ShardError`."""
    if not _QUEUE_NAME.fullmatch(queue):
        raise ShardError(f"queue name {queue!r} must be 1-100 characters of a-z, 0-9, '.', '_' and '-'")
    return queue
