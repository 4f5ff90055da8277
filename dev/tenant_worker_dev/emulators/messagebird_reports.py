"""Status reports as MessageBird sends them: signed ``GET`` requests to the ``reportUrl`` of a message.

For each accepted message that asked for reports (and a signing key is configured), the emulator
reports ``buffered`` and then the final status (``delivered``, or ``delivery_failed`` for a share of
messages or a scripted recipient), each signed with :func:`sign_request` on the full URL it calls.
:class:`ReportPolicy` makes them misbehave as the real service may: late (``delay``), repeated
(``duplicates`` extra copies of the final report, each freshly signed as a redelivery is), or out of
order (the final status before ``buffered``). ``deliver_to`` sends them to another base URL than the
one signed, as a reverse proxy in front of the receiver would see them.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urlsplit, urlunsplit

from tenant_worker_dev.emulators.messagebird_signing import SIGNATURE_HEADER, sign_request

FAILED_REASON = ("unknown subscriber", 1)
STATUS_GAP_SECONDS = 0.05


@dataclass(frozen=True)
class ReportPolicy:
    """How the emulator reports on accepted messages (no ``signing_key``: it sends no reports)."""

    signing_key: str = ""
    delay: float = 0.0
    duplicates: int = 0
    out_of_order: bool = False
    failure_share: float = 0.0
    deliver_to: str | None = None
    seed: int | None = None


@dataclass(frozen=True)
class SentReport:
    """One report the emulator sent: what it said and the receiver's HTTP status (None: no answer)."""

    reference: str | None
    message_id: str
    status: str
    answer: int | None


class ReportSender:
    """Sends scheduled reports from a scheduler thread through a small pool of HTTP threads."""

    def __init__(self, policy: ReportPolicy) -> None:
        self.policy = policy
        self._random = random.Random(policy.seed)
        self._outcomes: dict[str, str] = {}
        self._queue: list[tuple[float, int, str, SentReport]] = []
        self._order = itertools.count()
        self._sent: list[SentReport] = []
        self._changed = threading.Condition()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="mb-report")
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="mb-report-scheduler", daemon=True)
        self._thread.start()

    def set_outcome(self, recipient: str, status: str) -> None:
        """Report ``status`` (e.g. ``delivery_failed``, ``expired``) as the final one for ``recipient``."""
        with self._changed:
            self._outcomes["".join(ch for ch in recipient if ch.isdigit())] = status

    def schedule(self, report_url: str, message_id: str, reference: str | None, recipient: str) -> None:
        """Queue the reports of one accepted message (see the module docs)."""
        policy = self.policy
        with self._changed:
            final = self._outcomes.get(recipient)
            if final is None:
                failed = self._random.random() < policy.failure_share
                final = "delivery_failed" if failed else "delivered"
        created = datetime.now(UTC).replace(microsecond=0)
        last = (final, created + timedelta(seconds=1))
        statuses = [last, ("buffered", created)] if policy.out_of_order else [("buffered", created), last]
        statuses += [last] * policy.duplicates
        start = time.monotonic() + policy.delay
        for step, (status, at) in enumerate(statuses):
            fields = {"id": message_id, "reference": reference or "", "recipient": recipient, "status": status}
            if status not in ("buffered", "delivered"):
                fields |= {"statusReason": FAILED_REASON[0], "statusErrorCode": str(FAILED_REASON[1])}
            fields["statusDatetime"] = at.isoformat()
            url = f"{report_url}{'&' if '?' in report_url else '?'}{urlencode(fields)}"
            report = SentReport(reference, message_id, status, None)
            with self._changed:
                heapq.heappush(self._queue, (start + step * STATUS_GAP_SECONDS, next(self._order), url, report))
                self._changed.notify_all()

    def sent(self) -> list[SentReport]:
        """Every report sent so far with its answer, in the order the answers came."""
        with self._changed:
            return list(self._sent)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[SentReport]:
        """Block until ``count`` reports were answered (or raise ``TimeoutError``)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._sent) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"expected {count} status reports within {timeout}s, got {len(self._sent)}")
                self._changed.wait(remaining)
            return list(self._sent)

    def close(self) -> None:
        """Stop sending (reports not yet due are dropped)."""
        with self._changed:
            self._stopped = True
            self._changed.notify_all()
        self._thread.join(5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        with self._changed:
            while not self._stopped:
                if not self._queue:
                    self._changed.wait()
                    continue
                due = self._queue[0][0] - time.monotonic()
                if due > 0:
                    self._changed.wait(due)
                    continue
                _, _, url, report = heapq.heappop(self._queue)
                self._pool.submit(self._send, url, report)

    def _send(self, url: str, report: SentReport) -> None:
        """One signed GET: signed on ``url``, sent to ``deliver_to`` if set (the proxy's address)."""
        signature = sign_request(self.policy.signing_key, url)
        target = url
        if self.policy.deliver_to:
            inner = urlsplit(self.policy.deliver_to)
            target = urlunsplit(urlsplit(url)._replace(scheme=inner.scheme, netloc=inner.netloc))
        request = urllib.request.Request(target, headers={SIGNATURE_HEADER: signature})  # noqa: S310 (dev only)
        answer: int | None
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                answer = response.status
        except urllib.error.HTTPError as exc:
            answer = exc.code
        except OSError:
            answer = None
        with self._changed:
            self._sent.append(SentReport(report.reference, report.message_id, report.status, answer))
            self._changed.notify_all()
