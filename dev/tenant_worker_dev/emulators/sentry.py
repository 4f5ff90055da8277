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
from types import TracebackType
from typing import Any, Self

from tenant_worker_dev.emulators.http_server import HttpServer, Reply, Request

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
        self._server: HttpServer | None = None

    def start(self) -> Self:
        """Bind the port and serve from a daemon thread; returns self so it can be chained."""
        if self._server is None:
            self._server = HttpServer(*self._address, self._handle, name="sentry-recorder")
        return self

    def stop(self) -> None:
        """Stop serving, cut kept-alive connections and release the port."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

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
        return f"http://{self._address[0]}:{self._server.port}"

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

    def check_ins(self, monitor_slug: str | None = None) -> list[dict[str, Any]]:
        """The JSON payloads of all "check_in" items (Sentry Crons), in arrival order, optionally of one monitor."""
        return [
            document
            for document in _items_of_type(self.envelopes(), "check_in")
            if monitor_slug is None or document.get("monitor_slug") == monitor_slug
        ]

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

    def _handle(self, request: Request) -> Reply:
        """Answer one request on the server's event loop; the SDK reads only the status."""
        match = _INGEST_PATH.match(request.path)
        if request.method != "POST" or match is None:
            return Reply(404, b"{}")
        return Reply(self._receive(match["kind"], request.headers.get("content-encoding", ""), request.body), b"{}")

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
    return _items_of_type(envelopes, "event")


def _items_of_type(envelopes: list[Envelope], kind: str) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for envelope in envelopes:
        for item in envelope.items:
            document = item.json() if item.type == kind else None
            if isinstance(document, dict):
                documents.append(document)
    return documents
