"""Group commit for status reports: many requests, one replay check, one ``UPDATE``, one commit.

At a thousand reports a second, a transaction per report spends most of the server's time on
BEGIN/UPDATE/COMMIT round trips and a WAL flush each, and a thread per waiting request on switching
between them. :class:`ReportBatcher` takes each request's checked signature and report, and one thread
handles whatever arrived in the last few milliseconds (at most ``max_batch``): the token ids go to
the replay guard in one round trip (a replay fails its request with ``WebhookRejected``), the rest are
recorded by one guarded ``UPDATE`` (``DeliveryReceipts.record_reports``), and each request learns
whether its report changed a row. A request is answered only after its report is committed, as with
a transaction of its own: nothing is lost if the process dies, and if the database fails the tokens
are forgotten and the requests fail (5xx), so MessageBird delivers them again.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass

from tenant_worker.domain.delivery import DeliveryReport
from tenant_worker.domain.ports import AlertSink, Clock, ReplayGuard, SignedToken, WebhookRejected
from tenant_worker.domain.storage import UnitOfWorkFactory
from tenant_worker.services.delivery import REPLAYED, alert_undelivered

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Waiting:
    token: SignedToken
    report: DeliveryReport | None
    done: Future[bool]


class ReportBatcher:
    """Checks and records the reports of concurrent requests together (see the module docs)."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        guard: ReplayGuard,
        alerts: AlertSink,
        clock: Clock,
        max_batch: int = 500,
        max_wait: float = 0.002,
    ) -> None:
        self.uow, self.guard, self.alerts, self.clock = uow, guard, alerts, clock
        self.max_batch, self.max_wait = max_batch, max_wait
        self._waiting: list[_Waiting] = []
        self._arrived = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, token: SignedToken, report: DeliveryReport | None) -> Future[bool]:
        """Hand over a checked signature and its report (None: not one of ours, nothing to record).
        The future says whether the report changed its row, or fails with ``WebhookRejected`` (a
        replay), ``WebhookUnavailable`` or what the database raised."""
        done: Future[bool] = Future()
        with self._arrived:
            if self._thread is None:  # started on first use: after a fork, never before
                self._thread = threading.Thread(target=self._run, name="report-batcher", daemon=True)
                self._thread.start()
            self._waiting.append(_Waiting(token, report, done))
            self._arrived.notify()
        return done

    def _run(self) -> None:
        while True:
            with self._arrived:
                while not self._waiting:
                    self._arrived.wait()
            # Let the requests arriving right now join this batch (a few milliseconds at most).
            self.clock.sleep(self.max_wait)
            with self._arrived:
                batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
            try:
                self.handle(batch)
            except Exception:  # an alert that failed after the answers: this thread must live on
                log.exception("status reports: alerting failed after %d reports were answered", len(batch))

    def handle(self, batch: list[_Waiting]) -> None:
        """Check and record one batch and settle every request's future; only alerting, which comes
        after, may raise."""
        try:
            fresh = self.guard.first_use([item.token for item in batch], self.clock.now())
        except Exception as exc:
            _fail(batch, exc)
            return
        accepted = [item for item, ok in zip(batch, fresh, strict=True) if ok]
        _fail([item for item, ok in zip(batch, fresh, strict=True) if not ok], WebhookRejected(REPLAYED))
        try:
            with self.uow() as tx:
                recorded = tx.receipts.record_reports([item.report for item in accepted if item.report is not None])
        except Exception as exc:
            self.guard.forget([item.token for item in accepted])
            _fail(accepted, exc)
            return
        changed = {id(item.report) for item in recorded}
        for item in accepted:
            item.done.set_result(id(item.report) in changed)
        alert_undelivered(self.alerts, recorded)


def _fail(items: list[_Waiting], exc: Exception) -> None:
    for item in items:
        item.done.set_exception(exc)
