"""Fixtures of the service unit tests: every port is an in-memory fake (``tests.fakes``), time is a
:class:`~tests.fakes.FakeClock` (waits and backoff cost nothing), and nothing outside the process runs.

The fake clock starts on Monday 2026-03-02 at 09:00 UTC: 10:00 in Amsterdam, the seeded tenants' zone,
so :data:`TODAY` is their local date and a tenant without quiet hours may send.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any, TypeVar

import pytest

from tenant_worker.config import Settings, load_settings
from tenant_worker.domain.records import CustomerRecord, Tenant
from tenant_worker.services.sending import SendReport, send_reminders
from tenant_worker.services.sweep import sweep_tenant
from tests.conftest import customer, unique_slug
from tests.fakes import (
    FakeBrokerMarker,
    FakeClock,
    FakeGateway,
    FakeQueue,
    FakeStorage,
    MemoryGatewayBreaker,
    RecordingAlerts,
)

_T = TypeVar("_T")

# What the fixtures below hand a test: make a tenant, sweep one, send some of its reminders.
NewTenant = Callable[..., Tenant]
Sweep = Callable[..., list[int]]
Send = Callable[..., SendReport]

# The seeded tenants' local date at the fake clock's start (Europe/Amsterdam, 10:00).
TODAY = dt.date(2026, 3, 2)


def make_settings(**changes: Any) -> Settings:
    """The defaults (no environment read), with ``changes``."""
    return replace(load_settings({}), **changes)


def due_customers(count: int, days_left: int = 5, prefix: str = "c", **extra: Any) -> list[CustomerRecord]:
    """``count`` customers whose subscription expires ``days_left`` days after :data:`TODAY`."""
    expires_on = TODAY + dt.timedelta(days=days_left)
    return [customer(f"{prefix}{i}", expires_on, **extra) for i in range(count)]


class InlineExecutor(Executor):
    """Runs each submitted call at once, on the caller's thread: a batch's sends happen in order."""

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        future: Future[_T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


@pytest.fixture
def clock() -> FakeClock:
    """The fake clock the storage and the services share."""
    return FakeClock()


@pytest.fixture
def storage(clock: FakeClock) -> FakeStorage:
    """An empty in-memory database whose timestamps come from ``clock``."""
    return FakeStorage(clock)


@pytest.fixture
def settings() -> Settings:
    """Default settings."""
    return make_settings()


@pytest.fixture
def queue() -> FakeQueue:
    """A broker that accepts every task."""
    return FakeQueue()


@pytest.fixture
def gateway() -> FakeGateway:
    """An SMS gateway that sends everything unless a test scripts otherwise."""
    return FakeGateway()


@pytest.fixture
def alerts() -> RecordingAlerts:
    """An alert sink that keeps every report."""
    return RecordingAlerts()


@pytest.fixture
def breaker() -> MemoryGatewayBreaker:
    """A closed gateway breaker."""
    return MemoryGatewayBreaker()


@pytest.fixture
def broker() -> FakeBrokerMarker:
    """A broker that has not lost anything since its first check."""
    marker = FakeBrokerMarker()
    marker.lost_since_last_check()
    return marker


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    """Send threads, as a worker has."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        yield pool


@pytest.fixture
def new_tenant(storage: FakeStorage) -> NewTenant:
    """Create a tenant with a unique slug (``spec`` overrides ``TenantSpec`` fields)."""

    def make(**spec: Any) -> Tenant:
        return storage.add_tenant(unique_slug(), **spec)

    return make


@pytest.fixture
def swept(storage: FakeStorage, queue: FakeQueue, settings: Settings, clock: FakeClock) -> Sweep:
    """Sweep a tenant now, as beat would, and return the ids of the reminders it published."""

    def sweep(tenant: Tenant, with_settings: Settings | None = None) -> list[int]:
        before = len(queue.ids)
        report = sweep_tenant(storage, tenant.slug, queue, with_settings or settings, now=clock.now())
        assert report.error is None, report.error
        return queue.ids[before:]

    return sweep


@pytest.fixture
def send(
    storage: FakeStorage,
    gateway: FakeGateway,
    executor: Executor,
    settings: Settings,
    alerts: RecordingAlerts,
    breaker: MemoryGatewayBreaker,
    clock: FakeClock,
) -> Send:
    """Run the send task for some of a tenant's reminders now, with the test's fakes (``changes``
    replace any argument of ``send_reminders``)."""

    def run(tenant: Tenant, ids: Sequence[int], **changes: Any) -> SendReport:
        arguments: dict[str, Any] = {
            "uow": storage,
            "tenant_id": tenant.id,
            "reminder_ids": list(ids),
            "gateway": gateway,
            "executor": executor,
            "settings": settings,
            "alerts": alerts,
            "now": clock.now(),
            "breaker": breaker,
            "clock": clock,
            **changes,
        }
        return send_reminders(**arguments)

    return run
