"""``Idempotency-Key`` on every POST, PUT, PATCH and DELETE, whatever router serves it.

ASGI middleware inside :class:`~tenant_worker.api.auth.Guard` (it needs the caller: answers are kept
per tenant, or per admin key). The first request with a key runs and its answer (status, type, body) is
kept for a day; the same key with the same request (method, path, query and body) gets that answer
again, marked ``Idempotent-Replayed: true``, without running anything; the same key with a different
request is 422; while the first request still runs, a repeat is 409. A 5xx answer or a crash is not
kept: the key is released so that the client's retry runs the request. Requests without a key, or
without a valid API key (they are refused by their route, or are signed webhooks), pass untouched.
"""

from __future__ import annotations

import hashlib
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenant_worker.api.auth import PRINCIPAL, Principal
from tenant_worker.api.problems import Problem, problem_response
from tenant_worker.domain.requests import Claim, IdempotencyStore, RequestStoreUnavailable, StoredAnswer

HEADER = "idempotency-key"
METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_KEY_LENGTH = 255


def document_header(schema: dict[str, Any]) -> None:
    """Declare the optional ``Idempotency-Key`` header on every POST, PUT, PATCH and DELETE of the
    OpenAPI document (the middleware serves them all, whichever router defines them)."""
    parameter = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "maxLength": MAX_KEY_LENGTH},
        "description": "Makes a retry safe: the first answer is replayed for 24 h; another request with "
        "the same key is 422, a repeat while the first runs 409.",
    }
    for operations in schema.get("paths", {}).values():
        for method, operation in operations.items():
            if method.upper() in METHODS:
                operation.setdefault("parameters", []).append(parameter)


def fingerprint(scope: Scope, body: bytes) -> str:
    """What makes two requests "the same": method, path, query string and body."""
    digest = hashlib.sha256()
    for part in (scope["method"].encode(), scope["path"].encode(), scope.get("query_string", b""), body):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


async def read_body(receive: Receive) -> bytes:
    """The whole request body."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


class Idempotency:
    """Replays remembered answers (see the module docs)."""

    def __init__(self, app: ASGIApp, store: IdempotencyStore) -> None:
        self.app, self.store = app, store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = Headers(scope=scope).get(HEADER) if scope["type"] == "http" else None
        principal: Principal | None = scope.get("state", {}).get(PRINCIPAL) if key is not None else None
        if key is None or principal is None or scope["method"] not in METHODS:
            await self.app(scope, receive, send)
            return
        if not 0 < len(key) <= MAX_KEY_LENGTH:
            detail = f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters"
            await problem_response(Problem(400, "Bad request", detail))(scope, receive, send)
            return
        body = await read_body(receive)
        print_ = fingerprint(scope, body)
        where = principal.idempotency_scope
        try:
            held = await run_in_threadpool(self.store.claim, where, key, print_)
        except RequestStoreUnavailable:
            await _answer(Problem(503, "Service unavailable", "the idempotency store is unreachable"), scope, send)
            return
        if held is Claim.MISMATCH:
            detail = "this Idempotency-Key was used for a different request; use a new key for a new request"
            await _answer(Problem(422, "Idempotency-Key reused", detail), scope, send)
        elif held is Claim.RUNNING:
            detail = "a request with this Idempotency-Key is still running; retry once it answered"
            await _answer(Problem(409, "Request in progress", detail), scope, send)
        elif isinstance(held, StoredAnswer):
            await _replay(held, send)
        else:
            await self._run(scope, _replaying(body, receive), send, where, key, print_)

    async def _run(self, scope: Scope, receive: Receive, send: Send, where: str, key: str, print_: str) -> None:
        """Run the request, pass its answer on, and keep it (or release the key after a 5xx or a crash)."""
        status, content_type, chunks = 500, "", []

        async def capture(message: Message) -> None:
            nonlocal status, content_type
            if message["type"] == "http.response.start":
                status = message["status"]
                content_type = Headers(raw=message.get("headers", [])).get("content-type", "")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            await run_in_threadpool(self.store.release, where, key)
            raise
        if status >= 500:
            await run_in_threadpool(self.store.release, where, key)
        else:
            answer = StoredAnswer(status, content_type, b"".join(chunks))
            await run_in_threadpool(self.store.remember, where, key, print_, answer)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the already read body once, then defers to the real one (disconnects)."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _answer(problem: Problem, scope: Scope, send: Send) -> None:
    async def nothing() -> Message:
        return {"type": "http.disconnect"}

    await problem_response(problem)(scope, nothing, send)


async def _replay(answer: StoredAnswer, send: Send) -> None:
    headers = [(b"content-length", str(len(answer.body)).encode()), (b"idempotent-replayed", b"true")]
    if answer.content_type:
        headers.append((b"content-type", answer.content_type.encode("latin-1")))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})
