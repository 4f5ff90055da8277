"""MessageBird's webhooks: status reports (``GET /v1/dlr/messagebird``) and inbound SMS
(``/v1/inbound/messagebird``, GET or POST). No API key: each request must carry MessageBird's
``MessageBird-Signature-JWT``, checked on the public URL before anything in the request is read
(``services.delivery.authenticate``); missing, forged, expired or replayed is 401, and nothing is
written.

A status report is recorded in the request: one ``UPDATE`` by primary key (a few milliseconds), so
the answer is 200 only once the report is committed and MessageBird, which delivers a report again
until it gets a 200, never loses one; see ``scripts/bench_reports.py`` for why no queue is needed.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from tenant_worker.adapters.sentry import init_sentry
from tenant_worker.api.deps import services_of
from tenant_worker.api.problems import Problem
from tenant_worker.bootstrap import Services
from tenant_worker.constants import DLR_PATH, INBOUND_PATH
from tenant_worker.domain.delivery import parse_inbound, parse_report
from tenant_worker.domain.ports import SignedToken, WebhookRejected, WebhookUnavailable
from tenant_worker.services.delivery import authenticate, forgotten_on_failure, record_reports
from tenant_worker.services.replies import handle_reply

router = APIRouter(tags=["webhooks"])
SIGNATURE_HEADER = "MessageBird-Signature-JWT"
_REFUSED: dict[int | str, dict[str, Any]] = {
    401: {"description": "No signature, or a forged, expired or replayed one: nothing was recorded"},
    503: {"description": "The webhook cannot be checked or recorded now; MessageBird delivers it again"},
}


class ReportAnswer(BaseModel):
    """What a status report did: ``recorded`` False for a duplicate, an out-of-order report, or a
    message that is not one of our reminders."""

    recorded: bool


class ReplyAnswer(BaseModel):
    """What a reply did: whether it asked to stop, and how many customers it opted out."""

    stop: bool
    opted_out: int


def _checked(services: Services, request: Request, path: str, body: bytes) -> SignedToken:
    """The request's signature, checked on ``PUBLIC_BASE_URL`` + ``path`` + the raw query string."""
    raw_query = request.scope.get("query_string", b"").decode("latin-1")
    try:
        return authenticate(
            services.webhook_verifier,
            services.replay_guard,
            services.clock,
            request.headers.get(SIGNATURE_HEADER),
            path,
            raw_query,
            body,
        )
    except WebhookRejected as exc:
        raise Problem(401, "Unauthorized", str(exc)) from None
    except WebhookUnavailable as exc:
        raise Problem(503, "Service unavailable", str(exc)) from None


@router.get(DLR_PATH, summary="MessageBird status report (signed)", responses=_REFUSED)
def messagebird_status_report(request: Request, services: Annotated[Services, Depends(services_of)]) -> ReportAnswer:
    """Record a delivery status on the reminder whose id is the report's ``reference`` (and whose
    message is its ``id``), unless the reminder already has a more advanced one."""
    token = _checked(services, request, DLR_PATH, b"")
    with forgotten_on_failure(services.replay_guard, token):
        report = parse_report(dict(request.query_params))
        if report is None:
            return ReportAnswer(recorded=False)
        init_sentry(services.settings)  # once per process; undelivered SMS are alerted
        return ReportAnswer(recorded=record_reports(services.uow, services.alerts, [report]) > 0)


def _fields(request: Request, body: bytes) -> dict[str, str]:
    """The inbound SMS's fields: the query string (GET), or a form or JSON body (POST)."""
    if not body:
        return dict(request.query_params)
    if "json" in request.headers.get("content-type", ""):
        try:
            document = json.loads(body)
        except ValueError:
            raise Problem(422, "Invalid input", "the body is not JSON") from None
        return (
            {k: str(v) for k, v in document.items() if isinstance(v, str | int)} if isinstance(document, dict) else {}
        )
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


@router.api_route(INBOUND_PATH, methods=["GET", "POST"], summary="MessageBird inbound SMS (signed)", responses=_REFUSED)
async def messagebird_inbound(request: Request, services: Annotated[Services, Depends(services_of)]) -> ReplyAnswer:
    """A customer's reply: a stop keyword opts them out of the tenants texting from that number."""
    body = await request.body()

    def receive() -> ReplyAnswer:
        token = _checked(services, request, INBOUND_PATH, body)
        with forgotten_on_failure(services.replay_guard, token):
            sms = parse_inbound(_fields(request, body))
            result = handle_reply(services.uow, sms, services.settings.stop_keywords)
        return ReplyAnswer(stop=result.stop, opted_out=sum(1 for r in result.opted_out if r.changed))

    return await run_in_threadpool(receive)
