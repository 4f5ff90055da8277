"""In-memory stand-ins for ports whose real adapters need a service. Each passes the same contract
tests as its real adapter (see tests/integration/test_gateway_breaker.py), so unit tests may trust it."""

from __future__ import annotations

import threading
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
    """An alert sink that keeps every report."""

    ended: list[tuple[str, str, str, list[int], str | None]] = field(default_factory=list)
    paused: list[str] = field(default_factory=list)

    def reminders_ended(
        self, tenant_slug: str, status: str, reason: str, reminder_ids: Sequence[int], error: str | None
    ) -> None:
        self.ended.append((tenant_slug, status, reason, list(reminder_ids), error))

    def gateway_paused(self, reason: str) -> None:
        self.paused.append(reason)

    def flush_due(self) -> int:
        return 0
