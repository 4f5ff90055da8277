"""Sending a batch of reminders: claim, render, send concurrently, record.

Each reminder moves ``pending -> sending`` in one atomic UPDATE before anything is sent, so a
duplicated task delivery (acks_late redelivery, a re-enqueue by a sweep) finds nothing to send. Before
a group of requests starts, their rows are marked started (``send_started_at``, committed): a row
whose worker dies unmarked never reached MessageBird and the recovery tick sends it again; a marked
one may have gone out and becomes ``unknown``. The SMS of a batch are sent concurrently (bounded by
``max_in_flight``) so one worker process keeps many gateway requests in flight. Outcomes are recorded
in one transaction afterwards, retried on a fresh connection if the database drops it.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any

from tenant_worker.adapters.phones import is_valid_e164
from tenant_worker.config import Settings
from tenant_worker.domain.model import OutboundSms, OutcomeKind, ReminderStatus, SendOutcome, SkipReason
from tenant_worker.domain.ports import (
    SYSTEM_CLOCK,
    AlertSink,
    Clock,
    GatewayBreaker,
    NoThrottle,
    SendThrottle,
    SmsGateway,
    ThrottleUnavailable,
)
from tenant_worker.domain.records import LedgerWrite, SendJob, Tenant
from tenant_worker.domain.sms_limits import over_segment_limit
from tenant_worker.domain.storage import StorageUnavailable, UnitOfWork, UnitOfWorkFactory
from tenant_worker.domain.templates import RenderedSms, TemplateError
from tenant_worker.services import dispatch
from tenant_worker.services.alerting import BatchAlerts
from tenant_worker.services.rendering import ChosenTemplate, build_sms, template_selector
from tenant_worker.services.retrying import run_with_retry
from tenant_worker.services.tenants import local_today, sending_window

# Requests whose rate-limit slots lie within this span share one "started" mark (one UPDATE): a
# batch sent at once costs one mark, a batch spread over 5 s of slots at most ten.
MARK_SPAN_SECONDS = 0.5


@dataclass
class SendReport:
    """Counts per outcome, plus the reminders to try again and when."""

    sent: int = 0
    failed: int = 0
    unknown: int = 0
    skipped: int = 0
    deferred: int = 0
    # Put back to pending because MessageBird rejected the access key (the breaker is open).
    paused: int = 0
    retry_ids: list[int] = field(default_factory=list)
    retry_in: float = 0.0
    # With ``top_up``: the tenant's next reminders, stamped for publishing.
    next_ids: list[int] = field(default_factory=list)
    # The tenant's queue, for metrics by shard (never by tenant); empty if the batch found nothing.
    queue: str = ""

    def counts(self) -> dict[str, int]:
        """Reminders by outcome: what the task reports and the metrics count."""
        return {
            "sent": self.sent,
            "failed": self.failed,
            "unknown": self.unknown,
            "skipped": self.skipped,
            "retry": len(self.retry_ids),
            "deferred": self.deferred,
            "paused": self.paused,
        }


@dataclass(frozen=True)
class _Prepared:
    job: SendJob
    sms: OutboundSms | None
    rendered: RenderedSms | None
    skip: SkipReason | None = None
    error: str | None = None


def send_reminders(
    uow: UnitOfWorkFactory,
    tenant_id: int,
    reminder_ids: Sequence[int],
    gateway: SmsGateway,
    executor: Executor,
    settings: Settings,
    alerts: AlertSink,
    now: dt.datetime | None = None,
    throttle: SendThrottle | None = None,
    top_up: bool = False,
    breaker: GatewayBreaker | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> SendReport:
    """Send the still-pending reminders among ``reminder_ids`` of one tenant and record the outcomes.

    Outside the tenant's sending window, or while the gateway breaker is open (MessageBird rejects
    the access key), nothing is sent: the reminders stay ``pending`` and are marked unpublished, so
    the recovery tick publishes them again when the window opens or the key works again.
    Each SMS first takes a slot from ``throttle`` (the shared rate limits); one that gets no slot
    soon enough is treated like a 429: back to pending and retried with backoff, never dropped.
    With ``top_up`` the transaction that records the outcomes also stamps the tenant's next batches
    (:func:`tenant_worker.services.dispatch.stamp_next_batches`, the continuation that keeps shards
    fair) and returns them in ``next_ids`` for the caller to publish: one transaction, not two.
    """
    now = now or clock.now()
    # Asked before the transaction opens: a Redis that hangs must not hold a database transaction open.
    paused = breaker is not None and breaker.is_open()
    with uow() as tx:
        tenant = tx.catalog.get_tenant(tenant_id)
        repo = tx.ledger(tenant_id)
        if paused or not sending_window(tenant).is_open(now, tenant.timezone):
            return SendReport(deferred=repo.defer_pending(reminder_ids), queue=tenant.queue)
        jobs = repo.start_sending(reminder_ids)
        choose = template_selector(tenant, tx.catalog.templates(tenant_id))
    if not jobs:
        return SendReport()
    claimed_at = jobs[0].claimed_at
    today = local_today(tenant.timezone, now)
    prepared = [_prepare(tenant, choose, job, today) for job in jobs]
    sms_list = [p.sms for p in prepared if p.sms is not None]
    tenant_rate = tenant.rate_per_second or settings.tenant_rate_per_second
    try:
        waits = (throttle or NoThrottle()).reserve_batch(tenant_id, tenant_rate, len(sms_list)) if sms_list else []
    except ThrottleUnavailable as exc:
        waits, not_sent = [], SendOutcome(OutcomeKind.DEFERRED, error=f"not sent: {exc}")
    else:
        not_sent = SendOutcome(OutcomeKind.RETRY, error="send rate limit reached; retrying later")
    outcomes = _send_marked(uow, tenant_id, claimed_at, sms_list, waits, not_sent, gateway, executor, clock)
    report = SendReport(queue=tenant.queue)
    batch_alerts = BatchAlerts()
    finished = [_record(item, outcomes.get(item.job.reminder_id), settings, report, batch_alerts) for item in prepared]

    def record(tx: UnitOfWork) -> list[int]:
        repo = tx.ledger(tenant_id)
        if top_up:
            # The dispatch lock before any row lock, in the same order as sweeps take them.
            repo.lock_for_dispatch()
        repo.finish_many(finished, claimed_at)
        # Nothing more for a tenant whose batch could not send for reasons of ours: the tick publishes
        # its waiting reminders once the breaker closes or the part is back.
        if top_up and not (report.paused or report.deferred):
            return dispatch.stamp_next_batches(repo, settings, clock.now())
        return []

    # Idempotent, so a dropped connection (a failover) is retried; if it never comes back, the rows
    # stay ``sending`` and the recovery tick settles them (marked ones as ``unknown``, never resent).
    report.next_ids = run_with_retry(uow, record, settings.record_retry, clock, "recording outcomes")
    batch_alerts.send(alerts, tenant.slug)
    rejection = next((o.error or "" for o in outcomes.values() if o.kind == OutcomeKind.REJECTED_KEY), None)
    if rejection is not None and breaker is not None and breaker.trip(rejection):
        alerts.gateway_paused(rejection)
    if report.retry_ids:
        worst = max(job.attempts for job in jobs if job.reminder_id in report.retry_ids)
        report.retry_in = settings.send_retry.delay(worst)
    return report


def _send_marked(
    uow: UnitOfWorkFactory,
    tenant_id: int,
    claimed_at: dt.datetime | None,
    sms_list: Sequence[OutboundSms],
    waits: Sequence[float],
    no_slot: SendOutcome,
    gateway: SmsGateway,
    executor: Executor,
    clock: Clock,
) -> dict[int, SendOutcome]:
    """Send each SMS at its rate-limit slot, marking each group of slots started (committed) first.

    An SMS without a slot (its outcome is ``no_slot``), or whose row this claim no longer holds, is not
    sent. After MessageBird rejects the access key once, the rest of the batch is not sent either."""
    outcomes: dict[int, SendOutcome] = {}
    futures: dict[int, Future[SendOutcome]] = {}
    key_rejected = threading.Event()
    reserved_at = clock.monotonic()

    def send(sms: OutboundSms, wait: float) -> SendOutcome:
        clock.sleep(reserved_at + wait - clock.monotonic())
        if key_rejected.is_set():
            return SendOutcome(OutcomeKind.REJECTED_KEY, error="not sent: MessageBird rejected the access key")
        outcome = gateway.send(sms)
        if outcome.kind == OutcomeKind.REJECTED_KEY:
            key_rejected.set()
        return outcome

    for group in slot_groups(waits, MARK_SPAN_SECONDS):
        ids = [int(sms_list[i].reference) for i in group]
        clock.sleep(reserved_at + waits[group[0]] - clock.monotonic())
        try:
            with uow() as tx:
                started = tx.ledger(tenant_id).mark_started(ids, claimed_at) if claimed_at else set()
        except StorageUnavailable as exc:
            error = f"not sent: {exc}"
            outcomes.update({reminder_id: SendOutcome(OutcomeKind.DEFERRED, error=error) for reminder_id in ids})
            continue
        for index in group:
            reminder_id = int(sms_list[index].reference)
            if reminder_id in started:
                futures[reminder_id] = executor.submit(send, sms_list[index], waits[index])
    outcomes.update({int(sms.reference): no_slot for sms in sms_list[len(waits) :]})
    outcomes.update({reminder_id: future.result() for reminder_id, future in futures.items()})
    return outcomes


def slot_groups(waits: Sequence[float], span: float) -> list[list[int]]:
    """Indexes of ``waits`` (ascending slot times) grouped so each group spans less than ``span``."""
    groups: list[list[int]] = []
    for index, wait in enumerate(waits):
        if groups and wait - waits[groups[-1][0]] < span:
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups


def _prepare(
    tenant: Tenant, choose: Callable[[int, str | None], ChosenTemplate], job: SendJob, today: dt.date
) -> _Prepared:
    if job.expires_on <= today:
        return _Prepared(job, None, None, skip=SkipReason.EXPIRED)
    if not job.phone or not is_valid_e164(job.phone):
        return _Prepared(job, None, None, skip=SkipReason.INVALID_PHONE)
    try:
        rendered = build_sms(tenant, choose(job.window_days, job.locale), job, today)
    except (TemplateError, LookupError) as exc:
        return _Prepared(job, None, None, error=f"template cannot be rendered: {exc}")
    too_long = over_segment_limit(rendered, tenant.max_segments)
    if too_long is not None:
        # Data saved before the bounds (or a lowered max_segments) can still exceed the cap: not sent,
        # alerted (see _record).
        return _Prepared(job, None, rendered, skip=SkipReason.TOO_LONG, error=too_long)
    sms = OutboundSms(str(job.reminder_id), tenant.originator, job.phone, rendered.body, rendered.encoding)
    return _Prepared(job, sms, rendered)


def _record(
    item: _Prepared, outcome: SendOutcome | None, settings: Settings, report: SendReport, alerts: BatchAlerts
) -> LedgerWrite:
    """The ledger write for one outcome: sent, back to pending (a retry, or the key was rejected), or
    a final failed/unknown (alerted). Written for the whole batch at once by the caller."""
    job = item.job
    rendered: dict[str, Any] = {}
    if item.rendered is not None:
        rendered = {"body": item.rendered.body, "encoding": item.rendered.encoding, "segments": item.rendered.segments}
    if item.skip is not None:
        report.skipped += 1
        if item.skip == SkipReason.TOO_LONG:
            alerts.add(ReminderStatus.SKIPPED, SkipReason.TOO_LONG.value, job.reminder_id, item.error)
        return job.reminder_id, ReminderStatus.SKIPPED, {"skip_reason": item.skip.value, **rendered}
    if item.sms is None:
        report.failed += 1
        alerts.add(ReminderStatus.FAILED, "template_error", job.reminder_id, item.error)
        return job.reminder_id, ReminderStatus.FAILED, {"last_error": item.error}
    if outcome is None:
        # The recovery tick took the row back before its request started: it is no longer ours.
        return job.reminder_id, ReminderStatus.PENDING, {}
    if outcome.kind == OutcomeKind.SENT:
        report.sent += 1
        return (
            job.reminder_id,
            ReminderStatus.SENT,
            {"provider_message_id": outcome.provider_id, "last_error": None, **rendered},
        )
    if outcome.kind in (OutcomeKind.REJECTED_KEY, OutcomeKind.DEFERRED):
        # Not the message's fault and nothing was sent: the attempt does not count, and the row waits
        # unpublished for the recovery tick (which, for a rejected key, waits for the breaker to close).
        if outcome.kind == OutcomeKind.REJECTED_KEY:
            report.paused += 1
        else:
            report.deferred += 1
        values = {"last_error": outcome.error, "enqueued_at": None, "attempts": job.attempts - 1}
        return job.reminder_id, ReminderStatus.PENDING, values
    if outcome.kind == OutcomeKind.RETRY and job.attempts < settings.send_max_attempts:
        report.retry_ids.append(job.reminder_id)
        return job.reminder_id, ReminderStatus.PENDING, {"last_error": outcome.error, **rendered}
    final = ReminderStatus.UNKNOWN if outcome.kind == OutcomeKind.UNKNOWN else ReminderStatus.FAILED
    error = outcome.error
    reason = {OutcomeKind.UNKNOWN: "no_answer", OutcomeKind.FAILED: "refused"}.get(outcome.kind, "retries_exhausted")
    if outcome.kind == OutcomeKind.RETRY:
        error = f"gave up after {job.attempts} attempts: {outcome.error}"
    if final == ReminderStatus.UNKNOWN:
        report.unknown += 1
    else:
        report.failed += 1
    alerts.add(final, reason, job.reminder_id, error)
    return job.reminder_id, final, {"last_error": error, **rendered}
