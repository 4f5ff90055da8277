"""MessageBird's webhooks as use cases: check a signed request, alert on undelivered SMS.

:func:`authenticate` runs before anything is read from the request: the signature must check out
(``WebhookVerifier``) and its token id must be new (``ReplayGuard``), else ``WebhookRejected`` and
nothing is written. If handling the request then fails on our side, :func:`forgotten_on_failure`
forgets the token id again, so that MessageBird, which delivers a request again until it is answered
200, is not refused as a replay. Status reports take the same steps in batches
(``services.report_batcher``) and end with :func:`alert_undelivered`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from tenant_worker.domain.delivery import UNDELIVERED, RecordedReport, alert_reason
from tenant_worker.domain.ports import AlertSink, Clock, ReplayGuard, SignedToken, WebhookRejected, WebhookVerifier
from tenant_worker.services.alerting import BatchAlerts

REPLAYED = "replayed request: this signature was already used"


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
    if not guard.first_use([token], clock.now())[0]:
        raise WebhookRejected(REPLAYED)
    return token


@contextmanager
def forgotten_on_failure(guard: ReplayGuard, token: SignedToken) -> Iterator[None]:
    """Forget the token if the block fails, so MessageBird's retry of the request is accepted."""
    try:
        yield
    except BaseException:
        guard.forget([token])
        raise


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
