"""The MessageBird emulator's HTTP side: routes ``POST /messages`` and the admin endpoints of an
:class:`~tenant_worker_dev.emulators.http_server.HttpServer` to a :class:`MessageEndpoint` (the emulator)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable
from dataclasses import asdict
from typing import Protocol

from tenant_worker_dev.emulators.http_server import HttpServer, Reply, Request
from tenant_worker_dev.emulators.messagebird_api import (
    ADMIN_PREFIX,
    BALANCE_PATH,
    MESSAGES_PATH,
    RecordedRequest,
    error_reply,
    json_reply,
)

NOT_FOUND = error_reply(404, 20, "resource not found", None)


class MessageEndpoint(Protocol):
    """What the HTTP layer needs from the emulator. Called on the server's event loop thread."""

    def handle_message(self, authorization: str | None, content_type: str, raw: bytes) -> Reply | Awaitable[Reply]:
        """Answer one ``POST /messages``, at once or (to wait without blocking the loop) as an awaitable."""
        ...

    def handle_balance(self, authorization: str | None) -> Reply:
        """Answer ``GET /balance`` (the cheap call a client uses to check its access key)."""
        ...

    def set_access_key(self, access_key: str) -> None:
        """``POST /_emulator/access-key``: from now on only this key is accepted (revocation)."""
        ...

    def clear(self) -> None:
        """``POST /_emulator/reset``."""
        ...

    def accepted(self) -> list[RecordedRequest]:
        """``GET /_emulator/accepted``."""
        ...

    def stats(self) -> dict[str, int]:
        """``GET /_emulator/stats``."""
        ...


def serve(host: str, port: int, emulator: MessageEndpoint) -> HttpServer:
    """Start serving ``emulator``; refusals (e.g. 411 for a chunked body) use MessageBird's error shape."""
    return HttpServer(host, port, functools.partial(route, emulator), reject=_refusal, name="messagebird-emulator")


def route(emulator: MessageEndpoint, request: Request) -> Reply | Awaitable[Reply]:
    """Dispatch one request; anything unknown gets MessageBird's 404 JSON."""
    path = request.path.rstrip("/")
    if request.method == "POST":
        if path == MESSAGES_PATH:
            headers = request.headers
            return emulator.handle_message(headers.get("authorization"), headers.get("content-type", ""), request.body)
        if path == f"{ADMIN_PREFIX}/reset":
            emulator.clear()
            return json_reply(200, {})
        if path == f"{ADMIN_PREFIX}/access-key":
            emulator.set_access_key(request.body.decode("utf-8", "replace").strip())
            return json_reply(200, {})
    elif request.method == "GET":
        if path == BALANCE_PATH:
            return emulator.handle_balance(request.headers.get("authorization"))
        if path == f"{ADMIN_PREFIX}/accepted":
            return json_reply(200, [asdict(record) for record in emulator.accepted()])
        if path == f"{ADMIN_PREFIX}/stats":
            return json_reply(200, emulator.stats())
    return NOT_FOUND


def _refusal(status: int, reason: str) -> Reply:
    return error_reply(status, 9, reason, None)
