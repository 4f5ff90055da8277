"""A local stand-in for MessageBird's ``POST /messages``, answering the way the official SDK 2.x expects.

The real API is unreachable from this machine and cannot be told to fail on cue. This emulator returns
MessageBird's status codes, error JSON and Message JSON, records every request, and can add latency,
enforce a rate limit and inject per-recipient faults, so retries, concurrency and "never resend a message
that may have gone out" can be proven in tests, the demo and benchmarks.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import socket
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl

MESSAGES_PATH = "/messages"
ADMIN_PREFIX = "/_emulator"
_ACCEPTED = 201


def digits_only(number: object) -> str:
    """Reduce a phone number to its digits, so "+31 6 1234" and "3161234" name the same recipient."""
    return "".join(ch for ch in str(number) if ch.isdigit())


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour, consumed by the next request to a recipient.

    Build it with :meth:`status` or :meth:`slow`; ``add_faults`` also takes a plain ``int`` as a status.
    """

    code: int
    delay: float = 0.0

    @classmethod
    def status(cls, code: int) -> Fault:
        """Answer with error status ``code`` (401, 422, 429, 5xx) and do not send the message."""
        if HTTPStatus(code) < 400:
            raise ValueError(f"a status fault must be an error status, got {code}")
        return cls(code=code)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Wait ``seconds`` and then accept: the SMS really goes out even if the client gave up waiting."""
        return cls(code=_ACCEPTED, delay=seconds)


@dataclass(frozen=True)
class RecordedRequest:
    """What one ``POST /messages`` asked for and how the emulator answered it."""

    received_at: float
    status: int
    originator: str | None
    recipients: list[str]
    body: str | None
    reference: str | None
    message_id: str | None
    datacoding: str | None


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json"


def _json_reply(status: int, document: object) -> _Reply:
    return _Reply(status, json.dumps(document).encode())


def _error_reply(status: int, code: int, description: str, parameter: str | None) -> _Reply:
    """MessageBird's error shape, which the SDK turns into ``ErrorException`` for 401 and 422."""
    return _json_reply(status, {"errors": [{"code": code, "description": description, "parameter": parameter}]})


_UNAUTHORIZED = _error_reply(401, 2, "Request not allowed (incorrect access_key)", "access_key")
_TOO_MANY = _error_reply(429, 25, "Too many requests", None)


def _fault_reply(code: int) -> _Reply:
    if code == 401:
        return _UNAUTHORIZED
    if code == 422:
        return _error_reply(422, 9, "no (correct) recipients found", "recipients")
    if code == 429:
        return _TOO_MANY
    if code in (502, 503, 504):
        # Load balancers in front of the API answer these in plain text, not MessageBird JSON.
        return _Reply(code, HTTPStatus(code).phrase.encode(), "text/plain")
    return _error_reply(code, 99, "Internal error", None)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _parse_payload(content_type: str, raw: bytes) -> dict[str, Any] | None:
    """The SDK sends JSON; the real API also takes form fields, so accept both."""
    try:
        if "form-urlencoded" in content_type:
            return dict(parse_qsl(raw.decode()))
        document = json.loads(raw or b"{}")
    except (UnicodeDecodeError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def _recipients_of(value: object) -> list[str]:
    """Recipients arrive as "a,b", a list of strings or ints, or a single number."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else [value]
    return [number for number in (digits_only(item) for item in items) if number]


def _validation_problem(payload: dict[str, Any], recipients: list[str]) -> tuple[str, str] | None:
    originator = payload.get("originator")
    if not isinstance(originator, str) or not originator.strip():
        return "originator is required", "originator"
    if not originator.lstrip("+").isdigit() and len(originator) > 11:
        return "originator is invalid (alphanumeric originators are at most 11 characters)", "originator"
    body = payload.get("body")
    if not isinstance(body, str) or not body:
        return "body is required", "body"
    if not recipients:
        return "no (correct) recipients found", "recipients"
    return None


class _TokenBucket:
    """Thread-safe token bucket refilled at ``rate`` a second, holding at most one second's worth."""

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError(f"rate limit must be positive, got {rate}")
        self._rate = rate
        self._capacity = max(rate, 1.0)
        self._tokens = self._capacity
        self._updated = time.monotonic()
        self._lock = threading.Lock()

    def try_take(self) -> bool:
        """Take one token if there is one; False means the caller is over the limit."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
            self._updated = now
            if self._tokens < 1.0:
                return False
            self._tokens -= 1.0
            return True

    def refill(self) -> None:
        """Start over with a full burst, as a fresh emulator would."""
        with self._lock:
            self._tokens, self._updated = self._capacity, time.monotonic()


class MessageBirdEmulator:
    """An in-process MessageBird REST API on 127.0.0.1 that records requests and misbehaves on demand."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        access_key: str = "test-access-key",
        latency: float = 0.0,
        rate_limit_per_second: float | None = None,
    ) -> None:
        self._address = (host, port)
        self._access_key = access_key
        self._latency = latency
        self._bucket = _TokenBucket(rate_limit_per_second) if rate_limit_per_second is not None else None
        self._changed = threading.Condition()
        self._records: list[RecordedRequest] = []
        self._faults: dict[str, deque[Fault]] = {}
        self._in_flight = 0
        self._max_in_flight = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        """Bind the port and serve from a daemon thread; returns self so it can be chained."""
        if self._server is None:
            self._server = _Server(self._address, self)
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop kept-alive connections, so a stopped emulator really looks down."""
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is not None:
            server.shutdown()
            server.close_connections()
            server.server_close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL to use as the SDK endpoint, e.g. ``http://127.0.0.1:54321``."""
        if self._server is None:
            raise RuntimeError("the MessageBird emulator is not running; call start() first")
        return f"http://{self._address[0]}:{self._server.server_port}"

    def add_faults(self, recipient: str, faults: Sequence[Fault | int]) -> None:
        """Queue faults for a recipient; each POST to it consumes one, then requests behave normally."""
        key = digits_only(recipient)
        if not key:
            raise ValueError(f"recipient {recipient!r} has no digits")
        queued = [fault if isinstance(fault, Fault) else Fault.status(fault) for fault in faults]
        with self._changed:
            self._faults.setdefault(key, deque()).extend(queued)

    def requests(self) -> list[RecordedRequest]:
        """Every ``POST /messages`` received so far, in arrival order of their answers."""
        with self._changed:
            return list(self._records)

    def accepted(self) -> list[RecordedRequest]:
        """Only the requests answered 201, i.e. the SMS that really went out."""
        return [record for record in self.requests() if record.status == _ACCEPTED]

    @property
    def max_in_flight(self) -> int:
        """The most ``POST /messages`` handled at the same time, proof that a client overlaps requests."""
        with self._changed:
            return self._max_in_flight

    def clear(self) -> None:
        """Forget recordings, pending faults and the in-flight high-water mark; refill the rate limit."""
        with self._changed:
            self._records.clear()
            self._faults.clear()
            self._max_in_flight = self._in_flight
        if self._bucket is not None:
            self._bucket.refill()

    def wait_for_accepted(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least ``count`` messages were accepted; raise TimeoutError if that never happens."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                accepted = [record for record in self._records if record.status == _ACCEPTED]
                remaining = deadline - time.monotonic()
                if len(accepted) >= count:
                    return accepted
                if remaining <= 0:
                    raise TimeoutError(
                        f"expected at least {count} accepted messages within {timeout}s, got {len(accepted)} "
                        f"(out of {len(self._records)} requests)"
                    )
                self._changed.wait(remaining)

    def stats(self) -> dict[str, int]:
        """Counters for the admin endpoint, read by benchmarks running in another process."""
        with self._changed:
            accepted = sum(1 for record in self._records if record.status == _ACCEPTED)
            return {
                "requests": len(self._records),
                "accepted": accepted,
                "max_in_flight": self._max_in_flight,
            }

    def _handle_message(self, authorization: str | None, content_type: str, raw: bytes) -> _Reply:
        received_at = time.time()
        with self._changed:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            time.sleep(self._latency)
            payload = _parse_payload(content_type, raw)
            recipients = _recipients_of(payload.get("recipients")) if payload is not None else []
            reply, message_id = self._answer(authorization, payload, recipients)
            fields = payload or {}
            self._record(
                RecordedRequest(
                    received_at=received_at,
                    status=reply.status,
                    originator=_text(fields.get("originator")),
                    recipients=recipients,
                    body=_text(fields.get("body")),
                    reference=_text(fields.get("reference")),
                    message_id=message_id,
                    datacoding=_text(fields.get("datacoding")),
                )
            )
            return reply
        finally:
            with self._changed:
                self._in_flight -= 1

    def _answer(
        self, authorization: str | None, payload: dict[str, Any] | None, recipients: list[str]
    ) -> tuple[_Reply, str | None]:
        if (authorization or "").strip() != f"AccessKey {self._access_key}":
            return _UNAUTHORIZED, None
        if payload is None:
            return _error_reply(422, 9, "request body is not a JSON object", None), None
        problem = _validation_problem(payload, recipients)
        if problem is not None:
            return _error_reply(422, 9, *problem), None
        fault = self._next_fault(recipients)
        if fault is not None and fault.code != _ACCEPTED:
            return _fault_reply(fault.code), None
        if fault is not None:
            time.sleep(fault.delay)
        if self._bucket is not None and not self._bucket.try_take():
            return _TOO_MANY, None
        message = self._message_json(payload, recipients)
        return _json_reply(_ACCEPTED, message), str(message["id"])

    def _next_fault(self, recipients: list[str]) -> Fault | None:
        with self._changed:
            for recipient in recipients:
                queue = self._faults.get(recipient)
                if queue:
                    return queue.popleft()
        return None

    def _record(self, record: RecordedRequest) -> None:
        with self._changed:
            self._records.append(record)
            self._changed.notify_all()

    def _message_json(self, payload: dict[str, Any], recipients: list[str]) -> dict[str, Any]:
        """The Message resource as MessageBird returns it; ``messagebird.message.Message().load`` reads it."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        message_id = uuid.uuid4().hex
        return {
            "id": message_id,
            "href": f"{self.url}{MESSAGES_PATH}/{message_id}",
            "direction": "mt",
            "type": "sms",
            "originator": payload["originator"],
            "body": payload["body"],
            "reference": _text(payload.get("reference")),
            "validity": None,
            "gateway": 10,
            "typeDetails": {},
            "datacoding": payload.get("datacoding") or "plain",
            "mclass": 1,
            "scheduledDatetime": None,
            "createdDatetime": now,
            "recipients": {
                "totalCount": len(recipients),
                "totalSentCount": len(recipients),
                "totalDeliveredCount": 0,
                "totalDeliveryFailedCount": 0,
                "items": [{"recipient": int(r), "status": "sent", "statusDatetime": now} for r in recipients],
            },
        }


class _Server(ThreadingHTTPServer):
    """One thread per connection, so latency and slow faults never serialise concurrent clients."""

    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], emulator: MessageBirdEmulator) -> None:
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
    server: _Server

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
            self._send(emulator._handle_message(self.headers.get("Authorization"), content_type, raw))
        elif path == f"{ADMIN_PREFIX}/reset":
            emulator.clear()
            self._send(_json_reply(200, {}))
        else:
            self._send(_error_reply(404, 20, "resource not found", None))

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        emulator = self.server.emulator
        if path == f"{ADMIN_PREFIX}/accepted":
            self._send(_json_reply(200, [asdict(record) for record in emulator.accepted()]))
        elif path == f"{ADMIN_PREFIX}/stats":
            self._send(_json_reply(200, emulator.stats()))
        else:
            self._send(_error_reply(404, 20, "resource not found", None))

    def _read_body(self) -> bytes | None:
        """Read the whole body, or the next request on this kept-alive connection would start mid-body."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._send(_error_reply(411, 9, "chunked bodies are not supported; send Content-Length", None))
            return None
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, reply: _Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging: benchmarks send thousands of requests."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator in the foreground and print its URL, so a parent process can read it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before answering each POST")
    parser.add_argument("--rate-limit", type=float, default=None, help="accepted requests per second")
    parser.add_argument("--access-key", default="test-access-key")
    args = parser.parse_args(argv)
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    # Block the signals before any server thread exists, so they reach sigwait() in this thread only.
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    emulator = MessageBirdEmulator(
        args.host,
        args.port,
        access_key=args.access_key,
        latency=args.latency,
        rate_limit_per_second=args.rate_limit,
    )
    with emulator:
        print(f"MessageBird emulator listening on {emulator.url}", flush=True)
        signal.sigwait(stop_signals)
    return 0


if __name__ == "__main__":
    sys.exit(main())
