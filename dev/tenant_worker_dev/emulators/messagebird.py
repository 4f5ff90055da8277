"""A local stand-in for MessageBird's ``POST /messages``, answering the way the official SDK 2.x expects.

The real API is unreachable from this machine and cannot be told to fail on cue. This emulator returns
MessageBird's status codes, error JSON and Message JSON, records every request, and can add latency,
enforce a rate limit and inject per-recipient faults, so retries, concurrency and "never resend a message
that may have gone out" can be proven in tests, the demo and benchmarks.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self

from tenant_worker_dev.emulators.http_server import HttpServer, Reply
from tenant_worker_dev.emulators.messagebird_api import (
    ACCEPTED,
    TOO_MANY,
    UNAUTHORIZED,
    Fault,
    RecordedRequest,
    TokenBucket,
    digits_only,
    error_reply,
    fault_reply,
    json_reply,
    message_reply,
    parse_payload,
    recipients_of,
    text_or_none,
    validation_problem,
)
from tenant_worker_dev.emulators.messagebird_http import serve
from tenant_worker_dev.emulators.messagebird_reports import ReportPolicy, ReportSender, SentReport

__all__ = ["Fault", "MessageBirdEmulator", "RecordedRequest", "ReportPolicy", "SentReport", "main"]


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
        reports: ReportPolicy | None = None,
    ) -> None:
        self._address = (host, port)
        # Status reports to each message's reportUrl (only with a signing key, as MessageBird signs them).
        self.reports = ReportSender(reports) if reports is not None and reports.signing_key else None
        self._access_key = access_key
        self._latency = latency
        self._bucket = TokenBucket(rate_limit_per_second) if rate_limit_per_second is not None else None
        self._changed = threading.Condition()
        self._records: list[RecordedRequest] = []
        self._faults: dict[str, deque[Fault]] = {}
        self._in_flight = 0
        self._max_in_flight = 0
        self._balance_requests = 0
        self._server: HttpServer | None = None
        self._url = ""

    def start(self) -> Self:
        """Bind the port and serve from a daemon thread; returns self so it can be chained."""
        if self._server is None:
            self._server = serve(*self._address, self)
            self._url = f"http://{self._address[0]}:{self._server.port}"
        return self

    def stop(self) -> None:
        """Stop serving and drop kept-alive connections, so a stopped emulator really looks down."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        if self.reports is not None:
            self.reports.close()

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
        return self._url

    def add_faults(self, recipient: str, faults: Sequence[Fault | int]) -> None:
        """Queue faults for a recipient; each POST to it consumes one, then requests behave normally."""
        key = digits_only(recipient)
        if not key:
            raise ValueError(f"recipient {recipient!r} has no digits")
        queued = [fault if isinstance(fault, Fault) else Fault.status(fault) for fault in faults]
        with self._changed:
            self._faults.setdefault(key, deque()).extend(queued)

    def set_access_key(self, access_key: str) -> None:
        """Accept only ``access_key`` from now on: the old key answers 401 as a revoked key does."""
        with self._changed:
            self._access_key = access_key

    @property
    def balance_requests(self) -> int:
        """How many ``GET /balance`` calls arrived (key checks and circuit-breaker probes)."""
        with self._changed:
            return self._balance_requests

    def handle_balance(self, authorization: str | None) -> Reply:
        """``GET /balance``: MessageBird's Balance JSON, or 401 for a wrong key."""
        with self._changed:
            self._balance_requests += 1
            authorised = (authorization or "").strip() == f"AccessKey {self._access_key}"
        if not authorised:
            return UNAUTHORIZED
        return json_reply(200, {"payment": "prepaid", "type": "credits", "amount": 1000})

    def requests(self) -> list[RecordedRequest]:
        """Every ``POST /messages`` received so far, in arrival order of their answers."""
        with self._changed:
            return list(self._records)

    def accepted(self) -> list[RecordedRequest]:
        """Only the requests answered 201, i.e. the SMS that really went out."""
        return [record for record in self.requests() if record.status == ACCEPTED]

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
                accepted = [record for record in self._records if record.status == ACCEPTED]
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
            accepted = sum(1 for record in self._records if record.status == ACCEPTED)
            return {
                "requests": len(self._records),
                "accepted": accepted,
                "max_in_flight": self._max_in_flight,
            }

    async def handle_message(self, authorization: str | None, content_type: str, raw: bytes) -> Reply:
        """Answer one ``POST /messages`` and record it. Runs on the server's event loop, so latency and
        slow faults are awaited: other requests overlap them instead of queueing behind them."""
        received_at = time.time()
        with self._changed:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            if self._latency:
                await asyncio.sleep(self._latency)
            payload = parse_payload(content_type, raw)
            recipients = recipients_of(payload.get("recipients")) if payload is not None else []
            reply, message_id = await self._answer(authorization, payload, recipients)
            fields = payload or {}
            report_url = text_or_none(fields.get("reportUrl"))
            if self.reports is not None and message_id is not None and report_url:
                for recipient in recipients:
                    self.reports.schedule(report_url, message_id, text_or_none(fields.get("reference")), recipient)
            self._record(
                RecordedRequest(
                    received_at=received_at,
                    status=reply.status,
                    originator=text_or_none(fields.get("originator")),
                    recipients=recipients,
                    body=text_or_none(fields.get("body")),
                    reference=text_or_none(fields.get("reference")),
                    message_id=message_id,
                    datacoding=text_or_none(fields.get("datacoding")),
                    report_url=report_url,
                )
            )
            return reply
        finally:
            with self._changed:
                self._in_flight -= 1

    async def _answer(
        self, authorization: str | None, payload: dict[str, Any] | None, recipients: list[str]
    ) -> tuple[Reply, str | None]:
        with self._changed:
            expected = f"AccessKey {self._access_key}"
        if (authorization or "").strip() != expected:
            return UNAUTHORIZED, None
        if payload is None:
            return error_reply(422, 9, "request body is not a JSON object", None), None
        problem = validation_problem(payload, recipients)
        if problem is not None:
            return error_reply(422, 9, *problem), None
        fault = self._next_fault(recipients)
        if fault is not None and fault.code != ACCEPTED:
            return fault_reply(fault.code), None
        if fault is not None:
            await asyncio.sleep(fault.delay)
        if self._bucket is not None and not self._bucket.try_take():
            return TOO_MANY, None
        return message_reply(self._url, payload, recipients)

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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator in the foreground and print its URL, so a parent process can read it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before answering each POST")
    parser.add_argument("--rate-limit", type=float, default=None, help="accepted requests per second")
    parser.add_argument("--access-key", default="test-access-key")
    parser.add_argument("--signing-key", default="", help="sign status reports to reportUrl with it (none without)")
    parser.add_argument("--report-delay", type=float, default=0.0, help="seconds before the first status report")
    parser.add_argument("--report-duplicates", type=int, default=0, help="extra copies of each final report")
    parser.add_argument("--report-out-of-order", action="store_true", help="final status before 'buffered'")
    parser.add_argument("--report-failure-share", type=float, default=0.0, help="share reported delivery_failed")
    parser.add_argument("--report-deliver-to", default=None, help="send reports to this base URL (a proxy)")
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
        reports=ReportPolicy(
            signing_key=args.signing_key,
            delay=args.report_delay,
            duplicates=args.report_duplicates,
            out_of_order=args.report_out_of_order,
            failure_share=args.report_failure_share,
            deliver_to=args.report_deliver_to,
        ),
    )
    with emulator:
        print(f"MessageBird emulator listening on {emulator.url}", flush=True)
        signal.sigwait(stop_signals)
    return 0


if __name__ == "__main__":
    sys.exit(main())
