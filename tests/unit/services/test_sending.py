"""Sending a batch on fakes: what reaches the gateway, what the ledger records, what is retried or
deferred and when, and who is alerted. The fake clock makes every rate-limit wait and backoff instant."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from tenant_worker.config import Settings
from tenant_worker.domain.localtime import SendingWindow
from tenant_worker.domain.model import OutboundSms, OutcomeKind, ReminderStatus, SendOutcome, SkipReason
from tenant_worker.domain.ports import ThrottleUnavailable
from tenant_worker.domain.storage import StorageUnavailable
from tenant_worker.services.recovery import recover
from tenant_worker.services.sending import SendReport
from tests.conftest import customer
from tests.fakes import (
    FakeBrokerMarker,
    FakeClock,
    FakeGateway,
    FakeQueue,
    FakeStorage,
    MemoryGatewayBreaker,
    RecordingAlerts,
)
from tests.unit.services.conftest import TODAY, InlineExecutor, NewTenant, Send, Sweep, due_customers, make_settings


def test_every_due_reminder_is_sent_once_and_recorded_with_its_provider_id_and_body(
    storage: FakeStorage,
    gateway: FakeGateway,
    alerts: RecordingAlerts,
    swept: Sweep,
    send: Send,
    new_tenant: NewTenant,
) -> None:
    tenant = new_tenant()
    records = due_customers(3)
    storage.add_customers(tenant, records)
    ids = swept(tenant)

    report = send(tenant, ids)

    assert (report.sent, report.failed, report.unknown, report.skipped, report.deferred) == (3, 0, 0, 0, 0)
    assert report.retry_ids == [] and report.next_ids == []
    assert sorted(sms.recipient for sms in gateway.sent) == sorted(r.phone for r in records)
    assert {sms.originator for sms in gateway.sent} == {tenant.originator}
    rows = storage.reminders(tenant)
    assert [row.status for row in rows] == [ReminderStatus.SENT] * 3
    assert [row.provider_message_id for row in rows] == [f"mb-{row.id}" for row in rows]
    assert all(row.sent_at is not None and row.send_started_at is not None for row in rows)
    assert rows[0].body is not None and rows[0].body.startswith("Hi Customer c")
    assert (rows[0].attempts, rows[0].segments, rows[0].encoding) == (1, 1, "GSM-7")
    assert alerts.ended == []


def test_a_duplicate_delivery_of_the_same_task_sends_nothing(
    storage: FakeStorage, gateway: FakeGateway, swept: Sweep, send: Send, new_tenant: NewTenant
) -> None:
    tenant = new_tenant()
    storage.add_customers(tenant, due_customers(3))
    ids = swept(tenant)
    send(tenant, ids)

    again = send(tenant, ids)

    assert again == SendReport()
    assert len(gateway.sent) == 3


def test_a_refused_message_fails_for_good_with_one_alert_for_the_batch(
    storage: FakeStorage,
    gateway: FakeGateway,
    alerts: RecordingAlerts,
    swept: Sweep,
    send: Send,
    new_tenant: NewTenant,
) -> None:
    tenant = new_tenant()
    storage.add_customers(tenant, due_customers(3))
    ids = swept(tenant)
    gateway.default = SendOutcome(OutcomeKind.FAILED, error="422: recipient blocked")

    report = send(tenant, ids)

    assert (report.sent, report.failed, report.retry_ids) == (0, 3, [])
    rows = storage.reminders(tenant)
    assert [(row.status, row.last_error) for row in rows] == [(ReminderStatus.FAILED, "422: recipient blocked")] * 3
    assert alerts.ended == [(tenant.slug, "failed", "refused", sorted(ids), "422: recipient blocked")]


def test_a_send_without_an_answer_ends_unknown_is_never_retried_and_is_alerted(
    storage: FakeStorage,
    gateway: FakeGateway,
    alerts: RecordingAlerts,
    swept: Sweep,
    send: Send,
    new_tenant: NewTenant,
) -> None:
    tenant = new_tenant()
    storage.add_customers(tenant, due_customers(2))
    ids = swept(tenant)
    gateway.default = OutcomeKind.UNKNOWN

    report = send(tenant, ids)

    assert (report.unknown, report.retry_ids) == (2, [])
    assert [row.status for row in storage.reminders(tenant)] == [ReminderStatus.UNKNOWN] * 2
    assert [(slug, status, reason, sorted(i)) for slug, status, reason, i, _ in alerts.ended] == [
        (tenant.slug, "unknown", "no_answer", sorted(ids))
    ]


def test_a_transient_error_puts_the_reminder_back_to_pending_with_a_backoff_from_the_send_retry_policy(
    storage: FakeStorage,
    gateway: FakeGateway,
    alerts: RecordingAlerts,
    swept: Sweep,
    send: Send,
    new_tenant: NewTenant,
) -> None:
    settings = make_settings(retry_base_seconds=8.0)
    tenant = new_tenant()
    records = due_customers(2)
    storage.add_customers(tenant, records)
    ids = swept(tenant)
    gateway.script(records[0].phone, SendOutcome(OutcomeKind.RETRY, error="503 from MessageBird"))

    report = send(tenant, ids, settings=settings)

    (retried,) = storage.reminders(tenant, ReminderStatus.PENDING)
    assert report.sent == 1 and report.retry_ids == [retried.id]
    # First attempt: half the base fixed, half jitter (equal jitter).
    assert 4.0 <= report.retry_in <= 8.0
    assert (retried.attempts, retried.last_error) == (1, "503 from MessageBird")
    assert alerts.ended == []


def test_the_backoff_grows_with_the_attempts_of_the_worst_reminder(
    storage: FakeStorage, gateway: FakeGateway, swept: Sweep, send: Send, new_tenant: NewTenant
) -> None:
    settings = make_settings(retry_base_seconds=8.0)
    tenant = new_tenant()
    storage.add_customers(tenant, due_customers(2))
    ids = swept(tenant)
    storage.update_reminders(ids[:1], attempts=2)  # this one's send will be its third attempt
    gateway.default = OutcomeKind.RETRY

    report = send(tenant, ids, settings=settings)

    assert sorted(report.retry_ids) == sorted(ids)
    assert 16.0 <= report.retry_in <= 32.0
    assert sorted(row.attempts for row in storage.reminders(tenant)) == [1, 3]


def test_a_reminder_that_exhausted_its_attempts_fails_and_is_alerted(
    storage: FakeStorage,
    gateway: FakeGateway,
    alerts: RecordingAlerts,
    settings: Settings,
    swept: Sweep,
    send: Send,
    new_tenant: NewTenant,
) -> None:
    tenant = new_tenant()
    storage.add_customers(tenant, due_customers(1))
    ids = swept(tenant)
    storage.update_reminders(ids, attempts=settings.send_max_attempts - 1)
    gateway.default = SendOutcome(OutcomeKind.RETRY, error="429 too many requests")

    report = send(tenant, ids)

    error = f"gave up after {settings.send_max_attempts} attempts: 429 too many requests"
    assert (report.failed, report.retry_ids) == (1, [])
    assert storage.reminder(ids[0]).status == ReminderStatus.FAILED
    assert alerts.ended == [(tenant.slug, "failed", "retries_exhausted", ids, error)]


def test_a_task_that_runs_in_quiet_hours_sends_nothing_and_leaves_the_reminders_for_the_recovery_tick(
    storage: FakeStorage,
    gateway: FakeGateway,
    clock: FakeClock,
    swept: Sweep,
    send: Send,
    new_tenant: NewTenant,
) -> None:
    tenant = new_tenant(sending_window=SendingWindow(dt.time(9), dt.time(12)))
    storage.add_customers(tenant, due_customers(3))
    ids = swept(tenant)
    clock.advance(dt.timedelta(hours=3))  # 13:00 in Amsterdam: the window closed before the task ran

    report = send(tenant, ids)

    assert (report.deferred, report.sent) == (3, 0)
    assert gateway.sent == []
    rows = storage.reminders(tenant)
    assert [(row.status, row.attempts, row.enqueued_at) for row in rows] == [(ReminderStatus.PENDING, 0, None)] * 3


def test_nothing_is_sent_while_the_gateway_breaker_is_open(
    storage: FakeStorage,
    gateway: FakeGateway,
    breaker: MemoryGatewayBreaker,
    swept: Sweep,
    send: Send,
    new_tenant: NewTenant,
) -> None:
    tenant = new_tenant()
    storage.add_customers(tenant, due_customers(2))
    ids = swept(tenant)
    breaker.trip("401: access key rejected")

    report = send(tenant, ids)

    assert report.deferred == 2 and gateway.sent == []
    assert [(row.status, row.attempts, row.enqueued_at) for row in storage.reminders(tenant)] == [
        (ReminderStatus.PENDING, 0, None)
    ] * 2


def test_a_rejected_access_key_pauses_the_batch_trips_the_breaker_and_alerts_once(
    storage: FakeStorage,
    gateway: FakeGateway,
    alerts: RecordingAlerts,
    breaker: MemoryGatewayBreaker,
    swept: Sweep,
    send: Send,
    new_tenant: NewTenant,
) -> None:
    tenant = new_tenant()
    storage.add_customers(tenant, due_customers(3))
    ids = swept(tenant)
    gateway.default = SendOutcome(OutcomeKind.REJECTED_KEY, error="401: incorrect access_key")

    report = send(tenant, ids, executor=InlineExecutor())

    assert (report.paused, report.failed, report.sent) == (3, 0, 0)
    assert len(gateway.sent) == 1, "after the key was rejected the rest of the batch must not be sent"
    assert breaker.is_open()
    assert alerts.paused == ["401: incorrect access_key"]
    assert alerts.ended == []
    rows = storage.reminders(tenant)
    assert [(row.status, row.attempts, row.enqueued_at) for row in rows] == [(ReminderStatus.PENDING, 0, None)] * 3


def test_a_second_batch_rejected_at_the_same_time_does_not_alert_again(
    storage: FakeStorage,
    gateway: FakeGateway,
    alerts: RecordingAlerts,
    breaker: MemoryGatewayBreaker,
    swept: Sweep,
    send: Send,
    new_tenant: NewTenant,
) -> None:
    tenant = new_tenant()
    storage.add_customers(tenant, due_customers(2))
    first, second = ([i] for i in swept(tenant))
    gateway.default = SendOutcome(OutcomeKind.REJECTED_KEY, error="401: incorrect access_key")
    send(tenant, first)

    # Another worker checked the breaker before the first batch tripped it.
    report = send(tenant, second, breaker=ClosedAtCheck(breaker))

    assert report.paused == 1
    assert alerts.paused == ["401: incorrect access_key"]


def test_sms_without_a_rate_limit_slot_in_time_are_retried_later(
    storage: FakeStorage, gateway: FakeGateway, swept: Sweep, send: Send, new_tenant: NewTenant
) -> None:
    tenant = new_tenant()
    storage.add_customers(tenant, due_customers(3))
    ids = swept(tenant)

    report = send(tenant, ids, throttle=ScriptedThrottle([0.0]))

    assert (report.sent, len(report.retry_ids), len(gateway.sent)) == (1, 2, 1)
    assert report.retry_in > 0
    waiting = storage.reminders(tenant, ReminderStatus.PENDING)
    assert [(row.attempts, row.last_error) for row in waiting] == [(1, "send rate limit reached; retrying later")] * 2


def test_each_sms_waits_for_its_rate_limit_slot_and_the_tenants_rate_is_asked_for(
    storage: FakeStorage,
    gateway: FakeGateway,
    clock: FakeClock,
    swept: Sweep,
    send: Send,
    new_tenant: NewTenant,
) -> None:
    tenant = new_tenant(rate_per_second=2.0)
    storage.add_customers(tenant, due_customers(3))
    ids = swept(tenant)
    throttle = ScriptedThrottle([0.0, 0.5, 1.0])
    start = clock.monotonic()

    report = send(tenant, ids, throttle=throttle, executor=InlineExecutor())

    assert report.sent == 3
    assert throttle.asked == [(tenant.id, 2.0, 3)]
    assert clock.monotonic() - start == pytest.approx(1.0)
    rows = storage.reminders(tenant)
    started = [row.send_started_at for row in rows if row.send_started_at is not None]
    assert started == sorted(started) and len(set(started)) == 3, "each slot group is marked when it starts"


def test_a_rate_limiter_that_cannot_be_asked_defers_the_batch_without_counting_an_attempt(
    storage: FakeStorage, gateway: FakeGateway, swept: Sweep, send: Send, new_tenant: NewTenant
) -> None:
    tenant = new_tenant()
    storage.add_customers(tenant, due_customers(2))
    ids = swept(tenant)

    report = send(tenant, ids, throttle=ScriptedThrottle(ThrottleUnavailable("rate limiter's Redis is down")))

    assert (report.deferred, report.sent, report.retry_ids) == (2, 0, [])
    assert gateway.sent == []
    rows = storage.reminders(tenant)
    assert [(row.status, row.attempts, row.enqueued_at) for row in rows] == [(ReminderStatus.PENDING, 0, None)] * 2
    assert rows[0].last_error == "not sent: rate limiter's Redis is down"


def test_a_finished_batch_stamps_the_tenants_next_batch_for_publishing(
    storage: FakeStorage, swept: Sweep, send: Send, new_tenant: NewTenant
) -> None:
    settings = make_settings(send_batch_size=2, max_batches_per_tenant=1)
    tenant = new_tenant()
    storage.add_customers(tenant, due_customers(5))
    first = swept(tenant, settings)
    ids = [row.id for row in storage.reminders(tenant)]
    assert first == ids[:2]

    report = send(tenant, first, settings=settings, top_up=True)

    assert (report.sent, report.next_ids) == (2, ids[2:4])
    assert [row.enqueued_at is not None for row in storage.reminders(tenant)] == [True] * 4 + [False]


def test_a_deferred_batch_publishes_no_next_batch(
    storage: FakeStorage, swept: Sweep, send: Send, new_tenant: NewTenant
) -> None:
    settings = make_settings(send_batch_size=2, max_batches_per_tenant=1)
    tenant = new_tenant()
    storage.add_customers(tenant, due_customers(5))
    first = swept(tenant, settings)

    report = send(tenant, first, settings=settings, top_up=True, throttle=ScriptedThrottle(ThrottleUnavailable("down")))

    assert (report.deferred, report.next_ids) == (2, [])


def test_a_database_lost_while_marking_a_group_started_defers_that_group_without_sending_it(
    storage: FakeStorage,
    gateway: FakeGateway,
    swept: Sweep,
    send: Send,
    new_tenant: NewTenant,
) -> None:
    tenant = new_tenant()
    storage.add_customers(tenant, due_customers(3))
    ids = swept(tenant)
    # Slots 0 and 0.1 s share a mark; the 1 s slot is marked after the first group was sent.
    hooked = HookedGateway(gateway, after_first_send=lambda: storage.fail_next())

    report = send(tenant, ids, gateway=hooked, executor=InlineExecutor(), throttle=ScriptedThrottle([0.0, 0.1, 1.0]))

    assert (report.sent, report.deferred) == (2, 1)
    assert len(gateway.sent) == 2
    rows = storage.reminders(tenant)
    assert [row.status for row in rows] == [ReminderStatus.SENT, ReminderStatus.SENT, ReminderStatus.PENDING]
    assert (rows[2].attempts, rows[2].enqueued_at, rows[2].send_started_at) == (0, None, None)
    assert rows[2].last_error is not None and rows[2].last_error.startswith("not sent: database connection lost")


def test_outcomes_are_recorded_once_the_database_comes_back(
    storage: FakeStorage,
    gateway: FakeGateway,
    clock: FakeClock,
    settings: Settings,
    swept: Sweep,
    send: Send,
    new_tenant: NewTenant,
) -> None:
    tenant = new_tenant()
    storage.add_customers(tenant, due_customers(3))
    ids = swept(tenant)
    hooked = HookedGateway(gateway, after_first_send=lambda: storage.fail_next(3, at="commit"))

    report = send(tenant, ids, gateway=hooked, executor=InlineExecutor())

    assert report.sent == 3 and storage.failures_left == 0
    assert [row.status for row in storage.reminders(tenant)] == [ReminderStatus.SENT] * 3
    assert len(gateway.sent) == 3
    # Three backoffs of the record retry policy (0.1 s doubling, equal jitter), all on the fake clock.
    assert len(clock.sleeps) == 3
    assert 0.05 + 0.1 + 0.2 <= clock.slept <= settings.record_retry.give_up_after  # type: ignore[operator]


def test_a_database_that_never_comes_back_leaves_the_sent_rows_to_the_recovery_tick_as_unknown(
    storage: FakeStorage,
    gateway: FakeGateway,
    clock: FakeClock,
    settings: Settings,
    alerts: RecordingAlerts,
    broker: FakeBrokerMarker,
    swept: Sweep,
    send: Send,
    new_tenant: NewTenant,
) -> None:
    tenant = new_tenant()
    storage.add_customers(tenant, due_customers(2))
    ids = swept(tenant)
    hooked = HookedGateway(gateway, after_first_send=lambda: storage.fail_next(10_000, at="begin"))

    with pytest.raises(StorageUnavailable):
        send(tenant, ids, gateway=hooked, executor=InlineExecutor())

    assert clock.slept <= settings.record_retry_seconds
    assert [row.status for row in storage.reminders(tenant)] == [ReminderStatus.SENDING] * 2
    while storage.failures_left:  # the database is back
        storage.take_failure("begin")
    clock.advance(settings.stale_sending_seconds + 1)
    queue = FakeQueue()
    report = recover(storage, queue, settings, alerts, gateway, MemoryGatewayBreaker(), broker, now=clock.now())
    assert report.unknown == 2 and queue.tasks == []
    assert [row.status for row in storage.reminders(tenant)] == [ReminderStatus.UNKNOWN] * 2
    assert len(gateway.sent) == 2, "a reminder that may have gone out is never sent again automatically"


def test_a_reminder_past_its_expiry_is_skipped_not_sent(
    storage: FakeStorage,
    gateway: FakeGateway,
    clock: FakeClock,
    alerts: RecordingAlerts,
    swept: Sweep,
    send: Send,
    new_tenant: NewTenant,
) -> None:
    tenant = new_tenant()
    storage.add_customers(tenant, due_customers(1, days_left=1))
    ids = swept(tenant)
    clock.advance(dt.timedelta(days=1))  # the task ran a day late: the subscription expires today

    report = send(tenant, ids)

    assert (report.skipped, report.sent) == (1, 0) and gateway.sent == []
    row = storage.reminder(ids[0])
    assert (row.status, row.skip_reason) == (ReminderStatus.SKIPPED, SkipReason.EXPIRED)
    assert alerts.ended == []


def test_a_reminder_to_a_number_that_is_not_e164_is_skipped_not_sent(
    storage: FakeStorage, gateway: FakeGateway, swept: Sweep, send: Send, new_tenant: NewTenant
) -> None:
    tenant = new_tenant()
    storage.add_customers(tenant, [customer("bad", TODAY + dt.timedelta(days=5), phone="0612345678")])
    ids = swept(tenant)

    report = send(tenant, ids)

    assert report.skipped == 1 and gateway.sent == []
    assert storage.reminder(ids[0]).skip_reason == SkipReason.INVALID_PHONE


def test_a_reminder_too_long_for_the_tenants_segment_cap_is_skipped_recorded_and_alerted(
    storage: FakeStorage,
    gateway: FakeGateway,
    alerts: RecordingAlerts,
    swept: Sweep,
    send: Send,
    new_tenant: NewTenant,
) -> None:
    tenant = new_tenant(max_segments=1)
    long_name = dataclasses.replace(customer("long", TODAY + dt.timedelta(days=5)), name="B" * 150)
    storage.add_customers(tenant, [long_name, *due_customers(1)])
    ids = swept(tenant)

    report = send(tenant, ids)

    assert (report.skipped, report.sent) == (1, 1)
    assert [sms.body.startswith("Hi Customer") for sms in gateway.sent] == [True]
    row = storage.reminder(ids[0])
    assert (row.status, row.skip_reason, row.segments) == (ReminderStatus.SKIPPED, SkipReason.TOO_LONG, 2)
    assert row.body is not None and "B" * 150 in row.body
    ((slug, status, reason, alerted, error),) = alerts.ended
    assert (slug, status, reason, alerted) == (tenant.slug, "skipped", "too_long", [ids[0]])
    assert error is not None and "the tenant allows 1" in error


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        pytest.param("Hi {customer_name}, pay {fee}", "unknown placeholder {fee}", id="unknown-placeholder"),
        pytest.param(None, "has no SMS template", id="no-template"),
    ],
)
def test_a_template_that_cannot_be_rendered_fails_the_reminder_and_alerts(
    storage: FakeStorage,
    gateway: FakeGateway,
    alerts: RecordingAlerts,
    swept: Sweep,
    send: Send,
    new_tenant: NewTenant,
    template: str | None,
    problem: str,
) -> None:
    tenant = new_tenant(template=template)
    storage.add_customers(tenant, due_customers(2))
    ids = swept(tenant)

    report = send(tenant, ids)

    assert (report.failed, report.sent) == (2, 0) and gateway.sent == []
    rows = storage.reminders(tenant)
    assert [row.status for row in rows] == [ReminderStatus.FAILED] * 2
    assert rows[0].last_error is not None and problem in rows[0].last_error
    ((slug, status, reason, alerted, error),) = alerts.ended
    assert (slug, status, reason, sorted(alerted)) == (tenant.slug, "failed", "template_error", sorted(ids))
    assert error is not None and problem in error


class ScriptedThrottle:
    """A rate limiter that grants the slots the test gives (fewer than asked: the rest wait too long),
    or raises what it is given."""

    def __init__(self, answer: list[float] | Exception) -> None:
        self.answer = answer
        self.asked: list[tuple[int, float | None, int]] = []

    def reserve_batch(self, tenant_id: int, tenant_rate: float | None, count: int) -> list[float]:
        self.asked.append((tenant_id, tenant_rate, count))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer[:count]


class HookedGateway:
    """A gateway that runs ``after_first_send`` once its first SMS went out (to fail the database then)."""

    def __init__(self, inner: FakeGateway, after_first_send: Callable[[], None]) -> None:
        self.inner = inner
        self.hook: Callable[[], None] | None = after_first_send

    def send(self, sms: OutboundSms) -> SendOutcome:
        outcome = self.inner.send(sms)
        hook, self.hook = self.hook, None
        if hook is not None:
            hook()
        return outcome

    def check_access(self) -> Any:
        return self.inner.check_access()

    def close(self) -> None:
        self.inner.close()


class ClosedAtCheck:
    """A breaker that another worker tripped just after this one checked it."""

    def __init__(self, inner: MemoryGatewayBreaker) -> None:
        self.inner = inner

    def is_open(self) -> bool:
        return False

    def trip(self, reason: str) -> bool:
        return self.inner.trip(reason)

    def reset(self) -> bool:
        return self.inner.reset()
