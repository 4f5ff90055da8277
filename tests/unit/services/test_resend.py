"""Sending again, on an operator's request, the reminders that ended failed or unknown, on fakes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from tenant_worker.config import Settings
from tenant_worker.domain.model import OutcomeKind, ReminderStatus, SendOutcome
from tenant_worker.domain.records import Tenant
from tenant_worker.services.quiet_hours import release_deferred
from tenant_worker.services.resend import count_resendable, resend
from tenant_worker.services.tenants import local_today
from tests.conftest import customer
from tests.fakes import FakeClock, FakeGateway, FakeQueue, FakeStorage
from tests.unit.services.conftest import NewTenant, Send, Sweep, make_settings

RESENT = "sent again by an operator after: "
Ended = Callable[..., dict[str, int]]


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock starting now: ``resend`` publishes with the system clock (it takes no ``now``),
    so the ledger's timestamps must agree with it."""
    return FakeClock(dt.datetime.now(dt.UTC))


@pytest.fixture
def ended(storage: FakeStorage, gateway: FakeGateway, clock: FakeClock, swept: Sweep, send: Send) -> Ended:
    """Give a tenant customers named after how their reminder ends, sweep and send them; returns
    their reminder ids by name."""

    def finish(tenant: Tenant, **outcomes: OutcomeKind) -> dict[str, int]:
        expires_on = local_today(tenant.timezone, clock.now()) + dt.timedelta(days=5)
        records = [customer(name, expires_on, name=name) for name in outcomes]
        for record in records:
            kind = outcomes[record.name]
            gateway.script(
                record.phone, kind if kind == OutcomeKind.SENT else SendOutcome(kind, error=f"{record.name}!")
            )
        storage.add_customers(tenant, records)
        send(tenant, swept(tenant))
        name_of = {record.phone: record.name for record in records}
        return {name_of[sms.recipient]: int(sms.reference) for sms in gateway.sent if sms.recipient in name_of}

    return finish


def test_only_failed_or_unknown_reminders_are_counted_as_resendable(
    storage: FakeStorage,
    ended: Ended,
    new_tenant: NewTenant,
) -> None:
    tenant = new_tenant()
    ended(
        tenant,
        failed1=OutcomeKind.FAILED,
        failed2=OutcomeKind.FAILED,
        unknown=OutcomeKind.UNKNOWN,
        sent=OutcomeKind.SENT,
    )

    assert count_resendable(storage, tenant.slug, ReminderStatus.FAILED, None) == 2
    assert count_resendable(storage, tenant.slug, ReminderStatus.UNKNOWN, None) == 1


def test_since_counts_only_what_ended_at_or_after_it(
    storage: FakeStorage,
    clock: FakeClock,
    ended: Ended,
    new_tenant: NewTenant,
) -> None:
    tenant = new_tenant()
    ended(tenant, early=OutcomeKind.FAILED)
    clock.advance(dt.timedelta(hours=1))
    since = clock.now()
    ended(tenant, late=OutcomeKind.FAILED)

    assert count_resendable(storage, tenant.slug, ReminderStatus.FAILED, since) == 1
    assert count_resendable(storage, tenant.slug, ReminderStatus.FAILED, None) == 2


def test_resend_reopens_the_failed_reminders_with_fresh_attempts_and_publishes_them(
    storage: FakeStorage,
    gateway: FakeGateway,
    queue: FakeQueue,
    settings: Settings,
    send: Send,
    ended: Ended,
    new_tenant: NewTenant,
) -> None:
    tenant = new_tenant()
    ids = ended(
        tenant,
        failed=OutcomeKind.FAILED,
        unknown=OutcomeKind.UNKNOWN,
        sent=OutcomeKind.SENT,
    )

    report = resend(storage, tenant.slug, ReminderStatus.FAILED, None, queue, settings)

    assert (report.reopened, report.published, report.error) == (1, 1, None)
    assert queue.batches[-1] == (tenant.id, [ids["failed"]])
    reopened = storage.reminder(ids["failed"])
    assert (reopened.status, reopened.attempts) == (ReminderStatus.PENDING, 0)
    assert reopened.last_error == RESENT + "failed!"
    assert storage.reminder(ids["unknown"]).status == ReminderStatus.UNKNOWN
    assert storage.reminder(ids["sent"]).status == ReminderStatus.SENT
    # Once sent, nothing is left to reopen: running it twice changes nothing.
    send(tenant, [ids["failed"]])
    again = resend(storage, tenant.slug, ReminderStatus.FAILED, None, queue, settings)
    assert (again.reopened, again.published) == (0, 0)
    assert storage.reminder(ids["failed"]).status == ReminderStatus.SENT
    assert [int(sms.reference) for sms in gateway.sent].count(ids["failed"]) == 2


def test_resend_publishes_within_the_tenants_bound_of_batches(
    storage: FakeStorage,
    queue: FakeQueue,
    ended: Ended,
    new_tenant: NewTenant,
) -> None:
    settings = make_settings(send_batch_size=2, max_batches_per_tenant=1)
    tenant = new_tenant()
    ended(tenant, **{f"u{i}": OutcomeKind.UNKNOWN for i in range(5)})

    report = resend(storage, tenant.slug, ReminderStatus.UNKNOWN, None, queue, settings)

    assert (report.reopened, report.published) == (5, 2)
    assert len(storage.reminders(tenant, ReminderStatus.PENDING)) == 5


def test_reminders_reopened_while_the_broker_is_down_are_published_by_the_recovery_tick(
    storage: FakeStorage,
    queue: FakeQueue,
    settings: Settings,
    clock: FakeClock,
    ended: Ended,
    new_tenant: NewTenant,
) -> None:
    tenant = new_tenant()
    ids = ended(tenant, failed=OutcomeKind.FAILED)
    queue.fail(None)

    report = resend(storage, tenant.slug, ReminderStatus.FAILED, None, queue, settings)

    assert (report.reopened, report.published) == (1, 0)
    assert report.error is not None and "not enqueued" in report.error
    assert storage.reminder(ids["failed"]).enqueued_at is None
    queue.recover()
    assert release_deferred(storage, queue, settings, now=clock.now()) == {tenant.slug: 1}


@pytest.mark.parametrize("status", ["sent", "pending", "sending", "skipped", "delivered"])
def test_only_failed_or_unknown_reminders_can_be_sent_again(
    storage: FakeStorage,
    queue: FakeQueue,
    settings: Settings,
    ended: Ended,
    new_tenant: NewTenant,
    status: str,
) -> None:
    tenant = new_tenant()
    ids = ended(tenant, sent=OutcomeKind.SENT)

    with pytest.raises(ValueError, match="only failed or unknown reminders can be sent again"):
        count_resendable(storage, tenant.slug, status, None)
    with pytest.raises(ValueError, match="only failed or unknown reminders can be sent again"):
        resend(storage, tenant.slug, status, None, queue, settings)

    assert storage.reminder(ids["sent"]).status == ReminderStatus.SENT
    assert len(queue.tasks) == 1
