"""Console SMS gateway: prints each SMS instead of sending it (the development default)."""

from __future__ import annotations

import sys
import threading
import uuid
from typing import TextIO

from tenant_worker.domain.model import AccessCheck, OutboundSms, OutcomeKind, SendOutcome


class ConsoleGateway:
    """Writes one block per SMS to a stream; always succeeds. Thread-safe."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def send(self, sms: OutboundSms) -> SendOutcome:
        """Print the SMS as it would be delivered and report it sent with a made-up id."""
        message_id = f"console-{uuid.uuid4().hex[:12]}"
        text = (
            f"--- SMS {message_id} (reference {sms.reference}, {sms.encoding}) ---\n"
            f"From: {sms.originator}\nTo:   {sms.recipient}\n{sms.body}\n"
        )
        with self._lock:
            # The real stdout: Celery replaces sys.stdout with a logger proxy in workers.
            stream = self.stream or sys.__stdout__ or sys.stdout
            stream.write(text)
            stream.flush()
        return SendOutcome(OutcomeKind.SENT, provider_id=message_id)

    def check_access(self) -> AccessCheck:
        """The console needs no key."""
        return AccessCheck.OK

    def close(self) -> None:
        """Nothing to release."""
