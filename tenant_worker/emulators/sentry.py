"""A local Sentry ingest endpoint that records what sentry-sdk 2.x sends.

Sentry itself is unreachable from this machine, yet tests must prove two things about error reporting:
that failures do get reported, and that reports never carry a debtor's phone number or message text.
Pointing the SDK's DSN at this recorder lets tests read both the parsed events and the raw bytes.
"""

from __future__ import annotations

import gzip
import importlib
import io
import json
import re
import threading
import time
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

_INGEST_PATH = re.compile(r"^/api/(?P<project>[^/]+)/(?P<kind>envelope|store)/?$")


class UnsupportedEncodingError(ValueError):
    """The request body uses a Content-Encoding this recorder cannot decode."""


@dataclass(frozen=True)
class EnvelopeItem:
    """One item of an envelope: its JSON header and its payload bytes."""

    headers: dict[str, Any]
    payload: bytes

    @property
    def type(self) -> str | None:
        """The item type, e.g. "event", "session" or "client_report"."""
        kind = self.headers.get("type")
        return kind if isinstance(kind, str) else None

    def json(self) -> Any:
        """The payload parsed as JSON, which events, sessions and client reports all are."""
        return json.loads(self.payload)


@dataclass(frozen=True)
class Envelope:
    """A parsed Sentry envelope: the header line, then its items in order."""

    headers: dict[str, Any]
    items: list[EnvelopeItem]


def _json_object(line: bytes) -> dict[str, Any]:
    document = json.loads(line)
    if not isinstance(document, dict):
        raise ValueError(f"expected a JSON object in envelope, got {line[:80]!r}")
    return document


def parse_envelope(data: bytes) -> Envelope:
    """Parse the envelope format: a header line, then per item a header line and a payload.

    The payload is ``length`` bytes when the item header gives one, else the rest of the line.
    """
    stream = io.BytesIO(data)
    first = stream.readline()
    headers = _json_object(first) if first.strip() else {}
    items: list[EnvelopeItem] = []
    while line := stream.readline():
        if not line.strip():
            continue
        item_headers = _json_object(line)
        length = item_headers.get("length")
        if length is None:
            payload = stream.readline().removesuffix(b"\n")
        else:
            payload = stream.read(int(length))
            if len(payload) != int(length):
                raise ValueError(f"envelope item is truncated: expected {length} bytes, got {len(payload)}")
            stream.readline()
        items.append(EnvelopeItem(item_headers, payload))
    return Envelope(headers, items)


def decode_body(body: bytes, content_encoding: str) -> bytes:
    """Undo the SDK's compression: gzip by default, brotli when the ``brotli`` module is installed."""
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        try:
            return zlib.decompress(body)
        except zlib.error:
            # Some clients send raw deflate without the zlib wrapper the RFC asks for.
            return zlib.decompress(body, -zlib.MAX_WBITS)
    if encoding == "br":
        try:
            brotli = importlib.import_module("brotli")
        except ImportError as error:
            raise UnsupportedEncodingError("br bodies need the brotli module") from error
        return bytes(brotli.decompress(body))
    raise UnsupportedEncodingError(f"unsupported Content-Encoding {content_encoding!r}")


class SentryRecorder:
    """An in-process Sentry ingest endpoint on 127.0.0.1 that keeps everything it receives."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._address = (host, port)
        self._changed = threading.Condition()
        self._raw: list[bytes] = []
        self._envelopes: list[Envelope] = []
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
        """Stop serving and release the port."""
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is not None:
            server.shutdown()
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
        """Base URL of the recorder, e.g. ``http://127.0.0.1:54321``."""
        if self._server is None:
            raise RuntimeError("the Sentry recorder is not running; call start() first")
        return f"http://{self._address[0]}:{self._server.server_port}"

    @property
    def dsn(self) -> str:
        """A DSN for ``sentry_sdk.init`` that sends everything here, project 1."""
        return self.url.replace("http://", "http://publickey@", 1) + "/1"

    def envelopes(self) -> list[Envelope]:
        """Every envelope parsed so far (store requests appear as one-event envelopes)."""
        with self._changed:
            return list(self._envelopes)

    def events(self) -> list[dict[str, Any]]:
        """The JSON payloads of all "event" items: captured messages and exceptions."""
        return _events_in(self.envelopes())

    def raw(self) -> list[bytes]:
        """Every request body after decompression, for searching leaked personal data byte for byte."""
        with self._changed:
            return list(self._raw)

    def clear(self) -> None:
        """Forget everything received so far."""
        with self._changed:
            self._raw.clear()
            self._envelopes.clear()

    def wait_for_events(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Block until at least ``count`` events arrived; raise TimeoutError if that never happens."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                events = _events_in(self._envelopes)
                remaining = deadline - time.monotonic()
                if len(events) >= count:
                    return events
                if remaining <= 0:
                    raise TimeoutError(
                        f"expected at least {count} Sentry events within {timeout}s, got {len(events)} "
                        f"(out of {len(self._raw)} requests)"
                    )
                self._changed.wait(remaining)

    def _receive(self, kind: str, content_encoding: str, body: bytes) -> int:
        """Record one ingest request and return the HTTP status to answer with."""
        try:
            data = decode_body(body, content_encoding)
        except UnsupportedEncodingError:
            return 415
        except (OSError, EOFError, zlib.error):
            return 400
        envelope: Envelope | None
        try:
            if kind == "store":
                envelope = Envelope({}, [EnvelopeItem({"type": "event"}, data)])
                envelope.items[0].json()
            else:
                envelope = parse_envelope(data)
        except ValueError:
            envelope = None
        with self._changed:
            self._raw.append(data)
            if envelope is not None:
                self._envelopes.append(envelope)
            self._changed.notify_all()
        return 200 if envelope is not None else 400


def _events_in(envelopes: list[Envelope]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for envelope in envelopes:
        for item in envelope.items:
            document = item.json() if item.type == "event" else None
            if isinstance(document, dict):
                events.append(document)
    return events


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], recorder: SentryRecorder) -> None:
        super().__init__(address, _Handler)
        self.recorder = recorder

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet: an SDK hanging up at interpreter exit is not worth a traceback."""


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with exact Content-Length on every answer, so the SDK's connection pool can reuse sockets."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        match = _INGEST_PATH.match(self.path.split("?", 1)[0])
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            status = 411
        elif match is None:
            status = 404
        else:
            status = self.server.recorder._receive(match["kind"], self.headers.get("Content-Encoding", ""), body)
        reply = b"{}"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging; the recordings are the output."""
