"""In-memory stand-ins for the SMS gateway, the gateway breaker and the alert sink. The breaker passes the
same contract tests as its Redis adapter (tests/integration/test_gateway_breaker.py), so unit tests may
trust it; the gateways only record and answer what the test scripted."""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from tenant_worker.domain.model import AccessCheck, OutboundSms, OutcomeKind, SendOutcome


class MemoryGatewayBreaker:
    """The gateway circuit breaker of one process: open while ``reason`` is set."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reason: str | None = None

    def is_open(self) -> bool:
        """Whether sending is paused."""
        with self._lock:
            return self.reason is not None

    def trip(self, reason: str) -> bool:
        """Open it; True only for the call that opened it."""
        with self._lock:
            if self.reason is not None:
                return False
            self.reason = reason
            return True

    def reset(self) -> bool:
        """Close it; True if it was open."""
        with self._lock:
            was_open, self.reason = self.reason is not None, None
            return was_open


class FakeGateway:
    """``domain.ports.SmsGateway`` that records every SMS and answers what the test scripted.

    Each recipient's scripted outcomes are used once each, in order; after them (and for anyone not
    scripted) it answers ``default``, by default "sent" with provider id ``mb-<reference>``. Safe to
    call from a batch's send threads, like the real one."""

    def __init__(self, default: SendOutcome | OutcomeKind | None = None, access: AccessCheck = AccessCheck.OK) -> None:
        self._lock = threading.Lock()
        self._scripts: defaultdict[str, deque[SendOutcome | OutcomeKind]] = defaultdict(deque)
        self.default = default
        self.access = access
        self.sent: list[OutboundSms] = []
        self.checks = 0
        self.closed = False

    def script(self, recipient: str, *outcomes: SendOutcome | OutcomeKind) -> None:
        """Answer the next sends to ``recipient`` with ``outcomes`` (a bare kind gets a made-up error)."""
        with self._lock:
            self._scripts[recipient].extend(outcomes)

    def send(self, sms: OutboundSms) -> SendOutcome:
        """Record ``sms`` and return the next scripted outcome for its recipient."""
        with self._lock:
            self.sent.append(sms)
            scripted = self._scripts.get(sms.recipient)
            answer = scripted.popleft() if scripted else self.default or OutcomeKind.SENT
        return _outcome(answer, sms)

    def check_access(self) -> AccessCheck:
        """The ``access`` the test set; counts the calls."""
        with self._lock:
            self.checks += 1
            return self.access

    def close(self) -> None:
        """Remember that it was closed."""
        self.closed = True

    def sent_to(self, recipient: str) -> list[OutboundSms]:
        """The SMS sent to one recipient, in order."""
        with self._lock:
            return [sms for sms in self.sent if sms.recipient == recipient]

    @property
    def references(self) -> list[int]:
        """Reminder ids of every SMS sent, in order."""
        with self._lock:
            return [int(sms.reference) for sms in self.sent]


def _outcome(item: SendOutcome | OutcomeKind, sms: OutboundSms) -> SendOutcome:
    if isinstance(item, SendOutcome):
        return item
    if item == OutcomeKind.SENT:
        return SendOutcome(item, provider_id=f"mb-{sms.reference}")
    return SendOutcome(item, error=f"scripted {item.value}")


class KeyCheckingGateway:
    """A gateway whose access key check answers what the test says (nothing is ever sent)."""

    def __init__(self, access: AccessCheck) -> None:
        self.access = access
        self.checks = 0

    def send(self, sms: OutboundSms) -> SendOutcome:
        return SendOutcome(OutcomeKind.RETRY, error="this fake sends nothing")

    def check_access(self) -> AccessCheck:
        self.checks += 1
        return self.access

    def close(self) -> None:
        pass


@dataclass
class RecordingAlerts:
    """An alert sink that keeps every report, and counts the recovery tick's ``flush_due`` calls."""

    ended: list[tuple[str, str, str, list[int], str | None]] = field(default_factory=list)
    paused: list[str] = field(default_factory=list)
    flushes: int = 0

    def reminders_ended(
        self, tenant_slug: str, status: str, reason: str, reminder_ids: Sequence[int], error: str | None
    ) -> None:
        self.ended.append((tenant_slug, status, reason, list(reminder_ids), error))

    def gateway_paused(self, reason: str) -> None:
        self.paused.append(reason)

    def flush_due(self) -> int:
        self.flushes += 1
        return 0
