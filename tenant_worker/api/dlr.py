"""MessageBird's webhooks: status reports (``GET /v1/dlr/messagebird``) and inbound SMS
(``/v1/inbound/messagebird``, GET or POST). No API key: each request must carry MessageBird's
``MessageBird-Signature-JWT``, checked on the public URL before anything in the request is used;
missing, forged, expired or replayed is 401, and nothing is written.

A status report is answered 200 only once it is committed, so MessageBird, which delivers a report
again until it gets a 200, never loses one. Reports of concurrent requests share one replay check
and one transaction (``services.report_batcher``), and the handler waits for its batch on the event
loop, holding no thread: ``scripts/bench_reports.py`` measures it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from tenant_worker.adapters.prometheus import count_status_report
from tenant_worker.api.deps import services_of
from tenant_worker.api.problems import Problem
from tenant_worker.bootstrap import Services
from tenant_worker.constants import DLR_PATH, INBOUND_PATH
from tenant_worker.domain.delivery import parse_inbound, parse_report
from tenant_worker.domain.ports import WebhookRejected, WebhookUnavailable
from tenant_worker.services.delivery import authenticate, forgotten_on_failure
from tenant_worker.services.replies import handle_reply

router = APIRouter(tags=["webhooks"])
SIGNATURE_HEADER = "MessageBird-Signature-JWT"
# A report's batch is recorded within milliseconds; this only bounds a hung database.
RECORD_TIMEOUT_SECONDS = 10
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


async def _services(request: Request) -> Services:
    """``deps.services_of`` as an async dependency: FastAPI runs a plain ``def`` dependency in its
    thread pool, a hop that costs a status report more than checking its signature does."""
    return services_of(request)


@contextmanager
def _refusals() -> Iterator[None]:
    """A rejected signature is 401; one that cannot be checked now is 503."""
    try:
        yield
    except WebhookRejected as exc:
        raise Problem(401, "Unauthorized", str(exc)) from None
    except WebhookUnavailable as exc:
        raise Problem(503, "Service unavailable", str(exc)) from None


def _raw_query(request: Request) -> str:
    """The query string as sent: it is part of the URL MessageBird signed."""
    raw: bytes = request.scope.get("query_string", b"")
    return raw.decode("latin-1")


# The two possible answers, serialised once: at a thousand reports a second, pydantic's validation of
# a one-field model is a measurable share of a request.
_ANSWERS = {flag: ReportAnswer(recorded=flag).model_dump_json().encode() for flag in (True, False)}


@router.get(DLR_PATH, summary="MessageBird status report (signed)", response_model=ReportAnswer, responses=_REFUSED)
async def messagebird_status_report(request: Request, services: Annotated[Services, Depends(_services)]) -> Response:
    """Record a delivery status on the reminder whose id is the report's ``reference`` (and whose
    message is its ``id``), unless the reminder already has a more advanced one."""
    with _refusals():
        # Hashes and an HMAC, no I/O: checked on the event loop; the replay check is the batch's.
        signature = request.headers.get(SIGNATURE_HEADER)
        token = services.webhook_verifier.verify(signature, DLR_PATH, _raw_query(request), b"")
        report = parse_report(dict(request.query_params))
        async with asyncio.timeout(RECORD_TIMEOUT_SECONDS):
            recorded = await asyncio.wrap_future(services.report_batcher.submit(token, report))
    if report is not None:
        count_status_report(report.status)
    return Response(_ANSWERS[recorded], media_type="application/json")


def _fields(request: Request, body: bytes) -> dict[str, str]:
    """The inbound SMS's fields: the query string (GET), or a form or JSON body (POST)."""
    if not body:
        return dict(request.query_params)
    if "json" in request.headers.get("content-type", ""):
        try:
            document = json.loads(body)
        except ValueError:
            raise Problem(422, "Invalid input", "the body is not JSON") from None
        if not isinstance(document, dict):
            return {}
        return {key: str(value) for key, value in document.items() if isinstance(value, str | int)}
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


@router.api_route(INBOUND_PATH, methods=["GET", "POST"], summary="MessageBird inbound SMS (signed)", responses=_REFUSED)
async def messagebird_inbound(request: Request, services: Annotated[Services, Depends(_services)]) -> ReplyAnswer:
    """A customer's reply: a stop keyword opts them out of the tenants texting from that number."""
    body = await request.body()

    def receive() -> ReplyAnswer:
        signature = request.headers.get(SIGNATURE_HEADER)
        with _refusals():
            token = authenticate(
                services.webhook_verifier,
                services.replay_guard,
                services.clock,
                signature,
                INBOUND_PATH,
                _raw_query(request),
                body,
            )
        with forgotten_on_failure(services.replay_guard, token):
            sms = parse_inbound(_fields(request, body))
            result = handle_reply(services.uow, sms, services.settings.stop_keywords)
        return ReplyAnswer(stop=result.stop, opted_out=sum(1 for r in result.opted_out if r.changed))

    return await run_in_threadpool(receive)
