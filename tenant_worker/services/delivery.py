"""MessageBird's webhooks as use cases: check a signed request, record a status report, alert.

:func:`authenticate` runs before anything is read from the request: the signature must check out
(``WebhookVerifier``) and its token id must be new (``ReplayGuard``), else ``WebhookRejected`` and the
ledger is never touched. :func:`record_reports` writes reports in one unit of work (one guarded
``UPDATE``; see ``DeliveryReceipts``) and, after the commit, alerts once per (tenant, status, reason)
for SMS that were not delivered. If the database fails, the token id is forgotten again, so that
MessageBird, which delivers a report again when it is not answered 200, is not refused as a replay.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from tenant_worker.domain.delivery import UNDELIVERED, DeliveryReport, RecordedReport, alert_reason
from tenant_worker.domain.ports import AlertSink, Clock, ReplayGuard, SignedToken, WebhookRejected, WebhookVerifier
from tenant_worker.domain.storage import UnitOfWorkFactory
from tenant_worker.services.alerting import BatchAlerts

# Seconds a token id is remembered past its expiry: the validator's leeway (1 s) and clock skew.
REPLAY_MARGIN_SECONDS = 5


def authenticate(
    verifier: WebhookVerifier,
    guard: ReplayGuard,
    clock: Clock,
    signature: str | None,
    path: str,
    raw_query: str,
    body: bytes,
) -> SignedToken:
    """The request's token, checked and remembered; ``WebhookRejected`` for a missing, forged,
    expired or replayed one (``WebhookUnavailable`` when the check itself cannot run)."""
    token = verifier.verify(signature, path, raw_query, body)
    ttl = math.ceil((token.expires_at - clock.now()).total_seconds()) + REPLAY_MARGIN_SECONDS
    if not guard.first_use(token.token_id, ttl):
        raise WebhookRejected("replayed request: this signature was already used")
    return token


@contextmanager
def forgotten_on_failure(guard: ReplayGuard, token: SignedToken) -> Iterator[None]:
    """Forget the token if the block fails, so MessageBird's retry of the request is accepted."""
    try:
        yield
    except BaseException:
        guard.forget(token.token_id)
        raise


def record_reports(uow: UnitOfWorkFactory, alerts: AlertSink, reports: Sequence[DeliveryReport]) -> int:
    """Record the reports (a duplicate or an out-of-order one changes nothing); alert on undelivered
    SMS among those that changed a row. Returns how many changed a row."""
    if not reports:
        return 0
    with uow() as tx:
        recorded = tx.receipts.record_reports(reports)
    alert_undelivered(alerts, recorded)
    return len(recorded)


def alert_undelivered(alerts: AlertSink, recorded: Sequence[RecordedReport]) -> None:
    """One alert per (tenant, status, reason) for ``delivery_failed`` and ``expired`` reports."""
    per_tenant: dict[str, BatchAlerts] = defaultdict(BatchAlerts)
    for item in recorded:
        report = item.report
        if report.status in UNDELIVERED:
            detail = f"MessageBird reported {report.status}: {report.reason or 'no reason given'}"
            if report.error_code is not None:
                detail += f" (error code {report.error_code})"
            per_tenant[item.tenant_slug].add(report.status, alert_reason(report), report.reminder_id, detail)
    for slug, batch in per_tenant.items():
        batch.send(alerts, slug)
