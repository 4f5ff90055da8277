"""The emulators' HTTP transport: a small HTTP/1.1 server on one asyncio event loop in a daemon thread.

Why not ``http.server``: its thread per connection and ``email.parser`` headers cost the MessageBird
emulator ~0.3 ms of CPU a request, and benchmarks run it on the same cores as the worker they measure.
Why not a framework: the emulators need only request line, headers and an exact Content-Length body,
kept-alive and pipelined connections, and answers that may come later (latency, slow faults) without
holding up other connections. Handlers run on the loop thread, so they must not block.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import socket
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus

_log = logging.getLogger(__name__)
MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 1024 * 1024
_STATUS_LINES = {status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode() for status in HTTPStatus}


@dataclass(frozen=True, slots=True)
class Request:
    """One request, read completely. ``path`` is the target without its query string; ``keep_alive``
    says whether the connection stays open after the answer (HTTP/1.1 unless ``Connection: close``)."""

    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    keep_alive: bool


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer; the server adds Content-Length (exact, so clients keep the connection)."""

    status: int
    body: bytes
    content_type: str = "application/json"


Handler = Callable[[Request], Reply | Awaitable[Reply]]
Rejection = Callable[[int, str], Reply]


def json_rejection(status: int, reason: str) -> Reply:
    """The default answer to a request the server refuses before any handler sees it."""
    return Reply(status, json.dumps({"error": reason}).encode())


class HttpServer:
    """Serves ``handler`` on ``host:port`` from construction until :meth:`stop`. A handler answers at
    once with a :class:`Reply` (cheapest), or with an awaitable of one, which runs as a task so other
    connections are served meanwhile."""

    def __init__(
        self, host: str, port: int, handler: Handler, *, reject: Rejection = json_rejection, name: str = "http"
    ) -> None:
        self.handler = handler
        self.reject = reject
        self.connections: set[_Connection] = set()
        self.tasks: set[asyncio.Future[Reply]] = set()
        # Every connection reads into this one buffer (the loop runs one callback at a time) and copies
        # out what arrived: Python 3.11's plain Protocol allocates 256 KiB for every recv().
        self.receive = memoryview(bytearray(64 * 1024))
        # Bound and listening here, in the caller's thread: the port is known and clients may connect at once.
        self._socket = socket.create_server((host, port), backlog=1024)
        self.port: int = self._socket.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._stopping = self._loop.create_future()
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._run(),), daemon=True)
        self._thread.name = f"{name}-{self.port}"
        self._thread.start()

    def stop(self) -> None:
        """Close the port, cut every connection (idle kept-alive ones too) and drop pending answers."""
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(_set_done, self._stopping)
        self._thread.join()
        self._loop.close()

    async def _run(self) -> None:
        server = await self._loop.create_server(lambda: _Connection(self), sock=self._socket, backlog=1024)
        await self._stopping
        server.close()
        for connection in list(self.connections):
            connection.abort()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        # One more turn of the loop: aborted transports close their sockets in a scheduled callback.
        await asyncio.sleep(0)


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _Connection(asyncio.BufferedProtocol):
    """One client connection: parses requests from a buffer and answers them strictly in order."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        # A parsed head whose body has not fully arrived: (method, path, headers, length, keep_alive).
        self._head: tuple[str, str, dict[str, str], int, bool] | None = None
        # An answer is on its way; pipelined requests wait in the buffer so answers keep their order.
        self._busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        # A pending answer keeps running (a slow fault's SMS still goes out); it just has nowhere to go.
        self._transport = None
        self._server.connections.discard(self)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._server.receive

    def buffer_updated(self, nbytes: int) -> None:
        self._buffer += self._server.receive[:nbytes]
        if not self._busy:
            self._serve()
        elif len(self._buffer) > MAX_HEAD and self._transport is not None:
            self._transport.pause_reading()

    def _serve(self) -> None:
        """Answer every complete request in the buffer, until one must wait for its answer."""
        while self._transport is not None and not self._busy:
            request = self._next_request()
            if request is None:
                return
            try:
                outcome = self._server.handler(request)
            except Exception:
                _log.exception("emulator handler failed on %s %s", request.method, request.path)
                self._send(self._server.reject(500, "the emulator failed"), keep_alive=False)
                return
            if isinstance(outcome, Reply):
                self._send(outcome, request.keep_alive)
            else:
                self._busy = True
                task = asyncio.ensure_future(outcome)
                self._server.tasks.add(task)
                task.add_done_callback(functools.partial(self._answered, keep_alive=request.keep_alive))

    def _answered(self, task: asyncio.Future[Reply], keep_alive: bool) -> None:
        self._server.tasks.discard(task)
        self._busy = False
        if task.cancelled():
            return
        if task.exception() is not None:
            _log.error("emulator handler failed", exc_info=task.exception())
            self._send(self._server.reject(500, "the emulator failed"), keep_alive=False)
            return
        if self._transport is None:
            return
        self._send(task.result(), keep_alive)
        self._transport.resume_reading()
        self._serve()

    def _next_request(self) -> Request | None:
        """The next complete request, or None while it is still arriving (or after refusing it)."""
        buffer = self._buffer
        if self._head is None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD:
                    self._refuse(431, "request head too large")
                return None
            head = buffer[:end].decode("latin-1")
            del buffer[: end + 4]
            self._head = self._parse_head(head)
            if self._head is None:
                return None
        method, path, headers, length, keep_alive = self._head
        if len(buffer) < length:
            return None
        self._head = None
        body = bytes(buffer[:length])
        del buffer[:length]
        return Request(method, path, headers, body, keep_alive)

    def _parse_head(self, head: str) -> tuple[str, str, dict[str, str], int, bool] | None:
        request_line, *lines = head.split("\r\n")
        parts = request_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            self._refuse(400, "malformed request line")
            return None
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._refuse(411, "chunked bodies are not supported; send Content-Length")
            return None
        try:
            length = int(headers.get("content-length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self._refuse(400 if length < 0 else 413, "bad Content-Length")
            return None
        connection = headers.get("connection", "").lower()
        keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        if length > len(self._buffer) and headers.get("expect", "").lower() == "100-continue":
            assert self._transport is not None
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return method, target.split("?", 1)[0], headers, length, keep_alive

    def _refuse(self, status: int, reason: str) -> None:
        """Answer and hang up: after a request the server cannot frame, the next one cannot be found."""
        self._send(self._server.reject(status, reason), keep_alive=False)

    def _send(self, reply: Reply, keep_alive: bool) -> None:
        transport = self._transport
        if transport is None:
            return
        status = _STATUS_LINES.get(reply.status) or f"HTTP/1.1 {reply.status} \r\n".encode()
        head = b"%bContent-Type: %b\r\nContent-Length: %d\r\n%b\r\n" % (
            status,
            reply.content_type.encode("latin-1"),
            len(reply.body),
            b"" if keep_alive else b"Connection: close\r\n",
        )
        # One write: an answer split over two segments can wait out the client's delayed ACK (Nagle).
        transport.write(head + reply.body)
        if not keep_alive:
            transport.close()
            self._transport = None
