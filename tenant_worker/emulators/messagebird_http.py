"""The emulator's HTTP transport: a threading HTTP/1.1 server with keep-alive and exact
Content-Length, so ``requests.Session`` keeps its connections, that hands ``POST /messages`` and the
admin endpoints to a :class:`MessageEndpoint` (the emulator)."""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from tenant_worker.emulators.messagebird_api import (
    ADMIN_PREFIX,
    MESSAGES_PATH,
    RecordedRequest,
    Reply,
    error_reply,
    json_reply,
)


class MessageEndpoint(Protocol):
    """What the HTTP layer needs from the emulator."""

    def handle_message(self, authorization: str | None, content_type: str, raw: bytes) -> Reply:
        """Answer one ``POST /messages``."""
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


class EmulatorServer(ThreadingHTTPServer):
    """One thread per connection, so latency and slow faults never serialise concurrent clients."""

    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], emulator: MessageEndpoint) -> None:
        super().__init__(address, _Handler)
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def track(self, connection: socket.socket, *, open_: bool) -> None:
        """Remember live connections so stop() can cut the kept-alive ones."""
        with self._connections_lock:
            (self._connections.add if open_ else self._connections.discard)(connection)

    def close_connections(self) -> None:
        """Cut every live connection; their handler threads then see EOF and end."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            # Already closed by the client: nothing left to cut.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet: clients that time out and hang up mid-answer are part of the fault tests."""


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with exact Content-Length on every answer, so ``requests.Session`` keeps connections."""

    protocol_version = "HTTP/1.1"
    server: EmulatorServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        self.server.track(self.connection, open_=False)
        super().finish()

    def do_POST(self) -> None:
        raw = self._read_body()
        if raw is None:
            return
        path = self.path.split("?", 1)[0].rstrip("/")
        emulator = self.server.emulator
        if path == MESSAGES_PATH:
            content_type = self.headers.get("Content-Type", "")
            self._send(emulator.handle_message(self.headers.get("Authorization"), content_type, raw))
        elif path == f"{ADMIN_PREFIX}/reset":
            emulator.clear()
            self._send(json_reply(200, {}))
        else:
            self._send(error_reply(404, 20, "resource not found", None))

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        emulator = self.server.emulator
        if path == f"{ADMIN_PREFIX}/accepted":
            self._send(json_reply(200, [asdict(record) for record in emulator.accepted()]))
        elif path == f"{ADMIN_PREFIX}/stats":
            self._send(json_reply(200, emulator.stats()))
        else:
            self._send(error_reply(404, 20, "resource not found", None))

    def _read_body(self) -> bytes | None:
        """Read the whole body, or the next request on this kept-alive connection would start mid-body."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._send(error_reply(411, 9, "chunked bodies are not supported; send Content-Length", None))
            return None
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging: benchmarks send thousands of requests."""
