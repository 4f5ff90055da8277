"""The MessageBird REST API as the emulator speaks it: request parsing, validation, faults, and the
status codes, error JSON and Message JSON the official SDK 2.x expects. No sockets here (see
``messagebird_http``) and no state beyond the token bucket and message ids (see ``messagebird``)."""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from tenant_worker_dev.emulators.http_server import Reply

MESSAGES_PATH = "/messages"
BALANCE_PATH = "/balance"
ADMIN_PREFIX = "/_emulator"
ACCEPTED = 201


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
        return cls(code=ACCEPTED, delay=seconds)


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
    report_url: str | None = None


def json_reply(status: int, document: object) -> Reply:
    return Reply(status, json.dumps(document).encode())


def error_reply(status: int, code: int, description: str, parameter: str | None) -> Reply:
    """MessageBird's error shape, which the SDK turns into ``ErrorException`` for 401 and 422."""
    return json_reply(status, {"errors": [{"code": code, "description": description, "parameter": parameter}]})


UNAUTHORIZED = error_reply(401, 2, "Request not allowed (incorrect access_key)", "access_key")
TOO_MANY = error_reply(429, 25, "Too many requests", None)


def fault_reply(code: int) -> Reply:
    if code == 401:
        return UNAUTHORIZED
    if code == 422:
        return error_reply(422, 9, "no (correct) recipients found", "recipients")
    if code == 429:
        return TOO_MANY
    if code in (502, 503, 504):
        # Load balancers in front of the API answer these in plain text, not MessageBird JSON.
        return Reply(code, HTTPStatus(code).phrase.encode(), "text/plain")
    return error_reply(code, 99, "Internal error", None)


def text_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def parse_payload(content_type: str, raw: bytes) -> dict[str, Any] | None:
    """The SDK sends JSON; the real API also takes form fields, so accept both."""
    try:
        if "form-urlencoded" in content_type:
            return dict(parse_qsl(raw.decode()))
        document = json.loads(raw or b"{}")
    except (UnicodeDecodeError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def recipients_of(value: object) -> list[str]:
    """Recipients arrive as "a,b", a list of strings or ints, or a single number."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else [value]
    return [number for number in (digits_only(item) for item in items) if number]


def validation_problem(payload: dict[str, Any], recipients: list[str]) -> tuple[str, str] | None:
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


class TokenBucket:
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


class _MessageIds:
    """Unique 32-hex-digit ids like MessageBird's, cheaper than ``uuid4``: they need not be unguessable,
    so a random prefix per process (drawn again in a forked child) and a counter will do."""

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


_message_ids = _MessageIds()


def message_reply(base_url: str, payload: dict[str, Any], recipients: list[str]) -> tuple[Reply, str]:
    """201 with the Message resource as MessageBird returns it (``messagebird.message.Message().load``
    reads it), and the new message's id. Only the values from the request go through ``json.dumps``;
    the rest is fixed text, about half the cost of building and dumping the whole document each time."""
    dump = json.dumps
    now = datetime.now(UTC).isoformat(timespec="seconds")
    message_id = _message_ids.next()
    items = ", ".join(f'{{"recipient": {int(r)}, "status": "sent", "statusDatetime": "{now}"}}' for r in recipients)
    document = (
        f'{{"id": "{message_id}", "href": {dump(f"{base_url}{MESSAGES_PATH}/{message_id}")}, '
        f'"direction": "mt", "type": "sms", "originator": {dump(payload["originator"])}, '
        f'"body": {dump(payload["body"])}, "reference": {dump(text_or_none(payload.get("reference")))}, '
        f'"validity": null, "gateway": 10, "typeDetails": {{}}, '
        f'"datacoding": {dump(payload.get("datacoding") or "plain")}, "mclass": 1, "scheduledDatetime": null, '
        f'"createdDatetime": "{now}", "recipients": {{"totalCount": {len(recipients)}, '
        f'"totalSentCount": {len(recipients)}, "totalDeliveredCount": 0, "totalDeliveryFailedCount": 0, '
        f'"items": [{items}]}}}}'
    )
    return Reply(ACCEPTED, document.encode()), message_id
