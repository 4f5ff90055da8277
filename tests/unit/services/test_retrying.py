"""Retrying idempotent storage work across a dropped database connection, on the fake clock."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from tenant_worker.domain.backoff import RetryPolicy
from tenant_worker.domain.records import Tenant
from tenant_worker.domain.storage import StorageUnavailable, UnitOfWork
from tenant_worker.services.retrying import run_with_retry
from tests.fakes import FakeClock, FakeStorage

POLICY = RetryPolicy(base=0.1, cap=5.0, give_up_after=10.0)


def rename(tenant: Tenant, calls: list[int]) -> Callable[[UnitOfWork], str]:
    """Work that renames the tenant (idempotent) and counts its runs."""

    def work(tx: UnitOfWork) -> str:
        calls.append(1)
        stored = tx.catalog.get_tenant(tenant.id)
        tx.catalog.save_tenant(dataclasses.replace(stored, name="Renamed"))
        return "done"

    return work


@pytest.mark.parametrize("at", ["begin", "statement", "commit"])
def test_work_is_run_again_until_the_database_answers_and_its_effect_lands_once(
    storage: FakeStorage, clock: FakeClock, new_tenant: Callable[..., Tenant], at: str
) -> None:
    tenant = new_tenant()
    calls: list[int] = []
    storage.fail_next(3, at=at)  # type: ignore[arg-type]

    assert run_with_retry(storage, rename(tenant, calls), POLICY, clock, "renaming") == "done"

    with storage() as tx:
        assert tx.catalog.get_tenant(tenant.id).name == "Renamed"
    # A connection lost at begin never reaches the work; later, the failed runs are rolled back.
    assert len(calls) == (1 if at == "begin" else 4)
    # Equal jitter: each wait is at least half its exponential step (0.1, 0.2, 0.4 s).
    assert len(clock.sleeps) == 3 and clock.slept >= 0.05 + 0.1 + 0.2


def test_it_gives_up_after_the_policys_time_and_lets_the_error_through(
    storage: FakeStorage, clock: FakeClock, new_tenant: Callable[..., Tenant]
) -> None:
    tenant = new_tenant()
    calls: list[int] = []
    storage.fail_next(10_000, at="begin")

    with pytest.raises(StorageUnavailable):
        run_with_retry(storage, rename(tenant, calls), POLICY, clock, "renaming")

    assert calls == []
    assert 0 < clock.slept <= POLICY.give_up_after  # type: ignore[operator]
    assert all(wait <= POLICY.cap for wait in clock.sleeps)
    assert storage.failures_left > 9_000, "it stopped trying long before the database came back"


def test_a_policy_without_a_time_budget_does_not_retry(storage: FakeStorage, clock: FakeClock) -> None:
    storage.fail_next(1, at="begin")

    with pytest.raises(StorageUnavailable):
        run_with_retry(storage, lambda tx: None, RetryPolicy(base=0.1, cap=5.0), clock, "once")

    assert clock.sleeps == []


def test_an_error_that_is_not_about_the_connection_is_not_retried(
    storage: FakeStorage, clock: FakeClock, new_tenant: Callable[..., Tenant]
) -> None:
    tenant = new_tenant()
    calls: list[int] = []

    def broken(tx: UnitOfWork) -> None:
        rename(tenant, calls)(tx)
        raise ValueError("a bug in the statement")

    with pytest.raises(ValueError, match="a bug in the statement"):
        run_with_retry(storage, broken, POLICY, clock, "renaming")

    assert calls == [1] and clock.sleeps == []
    with storage() as tx:
        assert tx.catalog.get_tenant(tenant.id).name == tenant.name, "the failed run was rolled back"
