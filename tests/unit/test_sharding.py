"""The shard map, the route cache and the per-tenant batch bound: pure logic, nothing running."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenant_worker import cli, constants
from tenant_worker.adapters.redis_queues import queue_keys
from tenant_worker.adapters.routes import TenantQueueCache
from tenant_worker.domain.shards import (
    ShardError,
    parse_shards,
    queue_for_new_tenant,
    shard_for,
    shard_of_queue,
    validate_queue_name,
)
from tenant_worker.services.dispatch import batches_allowed


@given(st.integers(min_value=1, max_value=2**62), st.integers(min_value=1, max_value=4096))
def test_shard_is_in_range_and_the_same_every_time(tenant_id: int, count: int) -> None:
    assert 0 <= shard_for(tenant_id, count) < count
    assert shard_for(tenant_id, count) == shard_for(tenant_id, count)


def test_shard_hash_is_frozen_across_releases() -> None:
    # Stored queues were computed with these values; a different hash would split new and old tenants.
    assert [shard_for(n, 16) for n in range(1, 9)] == [6, 12, 1, 6, 0, 12, 2, 10]


def test_consecutive_tenants_spread_evenly_over_the_shards() -> None:
    counts = Counter(shard_for(n, 16) for n in range(1, 16_001))
    assert len(counts) == 16 and max(counts.values()) < 1.15 * 1000 and min(counts.values()) > 0.85 * 1000


def test_new_tenants_get_a_two_digit_shard_queue_or_their_own() -> None:
    assert queue_for_new_tenant(7, "acme", 16) == f"reminders.shard.{shard_for(7, 16):02d}"
    assert queue_for_new_tenant(7, "acme", 16, dedicated=True) == "reminders.tenant.acme"
    assert shard_of_queue("reminders.shard.03") == 3 and shard_of_queue("reminders.tenant.acme") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0-7", list(range(8))), ("3", [3]), ("0-3,8,10-11", [0, 1, 2, 3, 8, 10, 11]), (" 1 , 1-2", [1, 2])],
)
def test_shard_ranges_parse(text: str, expected: list[int]) -> None:
    assert parse_shards(text, 16) == expected


@pytest.mark.parametrize("text", ["16", "0-16", "7-3", "a", "1-", "", "-1"])
def test_bad_shard_ranges_are_rejected_with_a_reason(text: str) -> None:
    with pytest.raises(ShardError):
        parse_shards(text, 16)


@pytest.mark.parametrize("name", ["", "Reminders", "a b", "x" * 101, "reminders/shard"])
def test_unusable_queue_names_are_rejected(name: str) -> None:
    with pytest.raises(ShardError):
        validate_queue_name(name)


def test_worker_options_are_split_from_celerys_own() -> None:
    selection, rest = cli.worker_selection(
        ["--shards", "0-7", "-Q", "a,b", "--queues=c", "--tenant", "big", "--loglevel", "INFO", "-c", "4"]
    )
    assert (selection.shards, selection.queues, selection.tenant) == ("0-7", ["a,b", "c"], ["big"])
    assert rest == ["--loglevel", "INFO", "-c", "4"]


def test_queue_depth_reads_every_kombu_priority_list() -> None:
    assert queue_keys("reminders.shard.01") == [
        "reminders.shard.01",
        "reminders.shard.01\x06\x163",
        "reminders.shard.01\x06\x166",
        "reminders.shard.01\x06\x169",
    ]


@pytest.mark.parametrize(
    ("outstanding", "allowed"), [(0, 4), (1, 3), (50, 3), (51, 2), (200, 0), (500, 0)]
)  # fmt: skip
def test_a_tenant_never_has_more_than_its_bound_of_batches_in_flight(outstanding: int, allowed: int) -> None:
    assert batches_allowed(outstanding, batch_size=50, max_batches=4) == allowed


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_cache(routes: dict[int, str], version: list[str]) -> tuple[TenantQueueCache, list[int], FakeClock]:
    lookups: list[int] = []
    clock = FakeClock()

    def lookup(tenant_id: int) -> str | None:
        lookups.append(tenant_id)
        return routes.get(tenant_id)

    cache = TenantQueueCache(lookup, lambda: version[0], ttl=60, check_every=1, clock=clock)
    return cache, lookups, clock


def test_route_is_looked_up_once_then_cached() -> None:
    cache, lookups, clock = make_cache({1: "reminders.shard.01"}, ["1"])
    for _ in range(5):
        assert cache.queue_for(1) == "reminders.shard.01"
        clock.now += 0.5
    assert lookups == [1]


def test_version_change_invalidates_within_the_check_interval() -> None:
    routes, version = {1: "reminders.shard.01"}, ["1"]
    cache, _, clock = make_cache(routes, version)
    cache.queue_for(1)
    routes[1], version[0] = "reminders.tenant.big", "2"
    clock.now += 0.5
    assert cache.queue_for(1) == "reminders.shard.01"  # not checked yet
    clock.now += 0.6
    assert cache.queue_for(1) == "reminders.tenant.big"


def test_entries_expire_even_if_the_version_bump_was_lost() -> None:
    routes = {1: "reminders.shard.01"}
    cache, _, clock = make_cache(routes, ["1"])
    cache.queue_for(1)
    routes[1] = "reminders.shard.02"
    clock.now += 61
    assert cache.queue_for(1) == "reminders.shard.02"


def test_unknown_tenants_are_not_cached() -> None:
    routes: dict[int, str] = {}
    cache, lookups, _ = make_cache(routes, ["1"])
    assert cache.queue_for(5) is None
    routes[5] = constants.shard_queue(5)
    assert cache.queue_for(5) == "reminders.shard.05" and lookups == [5, 5]
