"""Sending a batch of reminders: claim, render, send concurrently, record.

Each reminder moves ``pending -> sending`` in one atomic UPDATE before anything is sent, so a
duplicated task delivery (acks_late redelivery, a re-enqueue by a sweep) finds nothing to send. The
SMS of a batch are sent concurrently (bounded by ``max_in_flight``) so one worker process keeps many
gateway requests in flight. Outcomes are recorded in one transaction afterwards.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from tenant_worker.adapters import catalog
from tenant_worker.adapters.orm import TenantRow
from tenant_worker.adapters.phones import is_valid_e164
from tenant_worker.adapters.repository import SendJob, TenantRepository
from tenant_worker.config import Settings
from tenant_worker.domain.backoff import retry_delay
from tenant_worker.domain.model import OutboundSms, OutcomeKind, ReminderStatus, SendOutcome, SkipReason
from tenant_worker.domain.ports import FailureReporter, NoThrottle, SendThrottle, SmsGateway
from tenant_worker.domain.sms_limits import over_segment_limit
from tenant_worker.domain.templates import RenderedSms, TemplateError
from tenant_worker.services import dispatch
from tenant_worker.services.rendering import build_sms, template_chooser
from tenant_worker.services.tenants import local_today, sending_window


@dataclass
class SendReport:
    """Counts per outcome, plus the reminders to try again and when."""

    sent: int = 0
    failed: int = 0
    unknown: int = 0
    skipped: int = 0
    deferred: int = 0
    retry_ids: list[int] = field(default_factory=list)
    retry_in: float = 0.0
    # With ``top_up``: the tenant's next reminders, stamped for publishing.
    next_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Prepared:
    job: SendJob
    sms: OutboundSms | None
    rendered: RenderedSms | None
    skip: SkipReason | None = None
    error: str | None = None


def send_reminders(
    sessions: sessionmaker[Session],
    tenant_id: int,
    reminder_ids: Sequence[int],
    gateway: SmsGateway,
    executor: Executor,
    settings: Settings,
    report_failure: FailureReporter,
    now: dt.datetime | None = None,
    throttle: SendThrottle | None = None,
    top_up: bool = False,
) -> SendReport:
    """Send the still-pending reminders among ``reminder_ids`` of one tenant and record the outcomes.

    Outside the tenant's sending window nothing is sent: the reminders stay ``pending`` and are
    marked unpublished, so ``release_deferred`` publishes them again when the window opens.
    Each SMS first takes a slot from ``throttle`` (the shared rate limits); one that gets no slot
    soon enough is treated like a 429: back to pending and retried with backoff, never dropped.
    With ``top_up`` the transaction that records the outcomes also stamps the tenant's next batches
    (:func:`tenant_worker.services.dispatch.stamp_next_batches`, the continuation that keeps shards
    fair) and returns them in ``next_ids`` for the caller to publish: one transaction, not two.
    """
    now = now or dt.datetime.now(dt.UTC)
    with sessions.begin() as session:
        tenant = catalog.get_tenant(session, tenant_id)
        repo = TenantRepository(session, tenant_id)
        if not sending_window(tenant).is_open(now, tenant.timezone):
            return SendReport(deferred=repo.defer_pending(reminder_ids))
        jobs = repo.start_sending(reminder_ids)
        choose = template_chooser(tenant, catalog.TenantCatalog(session, tenant_id).templates())
    today = local_today(tenant.timezone, now)
    prepared = [_prepare(tenant, choose, job, today, report_failure) for job in jobs]
    sms_list = [p.sms for p in prepared if p.sms is not None]
    tenant_rate = tenant.rate_per_second or settings.tenant_rate_per_second
    send = _throttled(gateway, throttle or NoThrottle(), tenant_id, tenant_rate, len(sms_list))
    outcomes = dict(
        zip((sms.reference for sms in sms_list), executor.map(send, sms_list, range(len(sms_list))), strict=True)
    )
    report = SendReport()
    finished: list[_Finish] = []
    for item in prepared:
        outcome = outcomes.get(str(item.job.reminder_id))
        finished.append(_record(tenant.slug, item, outcome, settings, report, report_failure))
    with sessions.begin() as session:
        repo = TenantRepository(session, tenant_id)
        if top_up:
            # The dispatch lock before any row lock, in the same order as sweeps take them.
            repo.lock_for_dispatch()
        repo.finish_many(finished)
        if top_up:
            report.next_ids = dispatch.stamp_next_batches(repo, settings, dt.datetime.now(dt.UTC))
    if report.retry_ids:
        worst = max(job.attempts for job in jobs if job.reminder_id in report.retry_ids)
        report.retry_in = retry_delay(worst, settings.retry_base_seconds, settings.retry_cap_seconds)
    return report


def _throttled(
    gateway: SmsGateway, throttle: SendThrottle, tenant_id: int, tenant_rate: float | None, count: int
) -> Callable[[OutboundSms, int], SendOutcome]:
    """The batch's send slots are reserved in one call; the i-th SMS waits for its slot, then sends."""
    waits = throttle.reserve_batch(tenant_id, tenant_rate, count) if count else []
    reserved_at = time.monotonic()

    def send(sms: OutboundSms, index: int) -> SendOutcome:
        if index >= len(waits):
            return SendOutcome(OutcomeKind.RETRY, error="send rate limit reached; retrying later")
        delay = reserved_at + waits[index] - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        return gateway.send(sms)

    return send


def _prepare(
    tenant: TenantRow, choose: Callable[[int], str], job: SendJob, today: dt.date, report_failure: FailureReporter
) -> _Prepared:
    if job.expires_on <= today:
        return _Prepared(job, None, None, skip=SkipReason.EXPIRED)
    if not job.phone or not is_valid_e164(job.phone):
        return _Prepared(job, None, None, skip=SkipReason.INVALID_PHONE)
    try:
        rendered = build_sms(tenant, choose(job.window_days), job, today)
    except (TemplateError, LookupError) as exc:
        return _Prepared(job, None, None, error=f"template cannot be rendered: {exc}")
    too_long = over_segment_limit(rendered, tenant.max_segments)
    if too_long is not None:
        # Data saved before the bounds (or a lowered max_segments) can still exceed the cap: not sent, alerted.
        report_failure(tenant.slug, job.reminder_id, ReminderStatus.SKIPPED.value, f"{SkipReason.TOO_LONG}: {too_long}")
        return _Prepared(job, None, rendered, skip=SkipReason.TOO_LONG, error=too_long)
    sms = OutboundSms(str(job.reminder_id), tenant.originator, job.phone, rendered.body, rendered.encoding)
    return _Prepared(job, sms, rendered)


_Finish = tuple[int, ReminderStatus, dict[str, Any]]


def _record(
    tenant_slug: str,
    item: _Prepared,
    outcome: SendOutcome | None,
    settings: Settings,
    report: SendReport,
    report_failure: FailureReporter,
) -> _Finish:
    """The ledger write for one outcome: sent, back to pending for a retry, or a final failed/unknown
    (alerted). Written for the whole batch at once by the caller."""
    reminder_id = item.job.reminder_id
    if item.skip is not None:
        report.skipped += 1
        return reminder_id, ReminderStatus.SKIPPED, {"skip_reason": item.skip.value}
    rendered: dict[str, Any] = {}
    if item.rendered is not None:
        rendered = {
            "body": item.rendered.body,
            "encoding": item.rendered.encoding,
            "segments": item.rendered.segments,
        }
    if outcome is None:
        report.failed += 1
        report_failure(tenant_slug, reminder_id, ReminderStatus.FAILED.value, item.error)
        return reminder_id, ReminderStatus.FAILED, {"last_error": item.error}
    if outcome.kind == OutcomeKind.SENT:
        report.sent += 1
        return (
            reminder_id,
            ReminderStatus.SENT,
            {"provider_message_id": outcome.provider_id, "last_error": None, **rendered},
        )
    if outcome.kind == OutcomeKind.RETRY and item.job.attempts < settings.send_max_attempts:
        report.retry_ids.append(reminder_id)
        return reminder_id, ReminderStatus.PENDING, {"last_error": outcome.error, **rendered}
    final = ReminderStatus.UNKNOWN if outcome.kind == OutcomeKind.UNKNOWN else ReminderStatus.FAILED
    error = outcome.error
    if outcome.kind == OutcomeKind.RETRY:
        error = f"gave up after {item.job.attempts} attempts: {outcome.error}"
    if final == ReminderStatus.UNKNOWN:
        report.unknown += 1
    else:
        report.failed += 1
    report_failure(tenant_slug, reminder_id, final.value, error)
    return reminder_id, final, {"last_error": error, **rendered}
