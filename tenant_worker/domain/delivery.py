"""Delivery receipts and replies: MessageBird's status reports and inbound SMS, as plain records.

A status report says what became of one SMS (``buffered``, ``delivered``, ``delivery_failed``...).
Reports arrive late, twice, or out of order, so the ledger keeps the *most advanced* one: a status's
:data:`DELIVERY_RANK` first (final statuses outrank ``buffered``, which outranks ``sent``), its
``statusDatetime`` second. :func:`supersedes` is that rule; the SQL adapter's guard repeats it in one
``UPDATE ... WHERE`` (``adapters/delivery_receipts.py``) and the contract tests check the two agree.

A reply is an inbound SMS; :func:`is_stop_reply` decides whether it asks to stop receiving reminders.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from tenant_worker.domain.model import ValidationError

# MessageBird's SMS statuses, by how far along the SMS is. Equal ranks are ordered by time.
DELIVERY_RANK: Mapping[str, int] = {
    "scheduled": 0,
    "sent": 0,
    "buffered": 1,
    "delivered": 2,
    "delivery_failed": 2,
    "expired": 2,
}
# The statuses that mean the SMS never reached the customer: an operator should hear of them.
UNDELIVERED = frozenset({"delivery_failed", "expired"})

# Keywords that opt a customer out when they are the whole reply (compared without case or accents):
# English, then the locales our tenants text in (de/sv/no/da, fr, nl, es). STOP_KEYWORDS overrides.
DEFAULT_STOP_KEYWORDS = ("STOP", "STOPP", "ARRET", "UITSCHRIJVEN", "AFMELDEN", "ABMELDEN", "BAJA", "UNSUBSCRIBE")


@dataclass(frozen=True)
class DeliveryReport:
    """One status report: MessageBird's message ``message_id`` with our ``reference`` (a reminder id)."""

    message_id: str
    reminder_id: int
    status: str
    status_at: dt.datetime
    reason: str | None = None
    error_code: int | None = None

    @property
    def rank(self) -> int:
        """How far along the SMS is (see :data:`DELIVERY_RANK`)."""
        return DELIVERY_RANK[self.status]


@dataclass(frozen=True)
class RecordedReport:
    """A report that changed the ledger: the tenant it belongs to, for per-tenant alerts."""

    tenant_id: int
    tenant_slug: str
    report: DeliveryReport


@dataclass(frozen=True)
class InboundSms:
    """An SMS a customer sent to one of our numbers: ``originator`` is the customer, ``recipient`` us."""

    originator: str
    recipient: str
    body: str


def supersedes(new: DeliveryReport, status: str | None, status_at: dt.datetime | None) -> bool:
    """Whether ``new`` should replace the recorded (``status``, ``status_at``): a higher rank, or the
    same rank and later. A duplicate does not; neither does a late ``buffered`` after ``delivered``."""
    if status is None:
        return True
    old = (DELIVERY_RANK.get(status, -1), status_at or dt.datetime.min.replace(tzinfo=dt.UTC))
    return (new.rank, new.status_at) > old


def most_advanced(reports: Iterable[DeliveryReport]) -> list[DeliveryReport]:
    """One report per reminder, the one :func:`supersedes` would keep; a batch written in one statement
    must not name a row twice."""
    kept: dict[int, DeliveryReport] = {}
    for report in reports:
        old = kept.get(report.reminder_id)
        if old is None or supersedes(report, old.status, old.status_at):
            kept[report.reminder_id] = report
    return list(kept.values())


def parse_report(fields: Mapping[str, str]) -> DeliveryReport | None:
    """The report in MessageBird's query parameters (``id``, ``reference``, ``status``,
    ``statusDatetime``, ``statusReason``, ``statusErrorCode``); None when ``reference`` is not one of
    our reminder ids (a message someone else sent on the account: nothing to record). Malformed
    fields are a ``ValidationError`` listing them."""
    problems = []
    message_id, status = fields.get("id", ""), fields.get("status", "")
    if not message_id or len(message_id) > 64:
        problems.append("id: required, at most 64 characters")
    if status not in DELIVERY_RANK:
        problems.append(f"status: one of {', '.join(DELIVERY_RANK)}")
    status_at = _timestamp(fields.get("statusDatetime", ""))
    if status_at is None:
        problems.append("statusDatetime: an RFC 3339 time with its offset")
    code = fields.get("statusErrorCode") or None
    if code is not None and not code.lstrip("-").isdigit():
        problems.append("statusErrorCode: an integer")
    if problems:
        raise ValidationError(problems)
    reference = fields.get("reference", "")
    if not reference.isdigit() or len(reference) > 18:
        return None
    assert status_at is not None
    reason = (fields.get("statusReason") or "")[:200] or None
    return DeliveryReport(message_id, int(reference), status, status_at, reason, int(code) if code else None)


def parse_inbound(fields: Mapping[str, str]) -> InboundSms:
    """An inbound SMS from MessageBird's fields: ``originator``, ``recipient`` and the text as
    ``body`` (SMS forwarding) or ``payload`` (Flow Builder); missing ones are a ``ValidationError``."""
    originator, recipient = fields.get("originator", "").strip(), fields.get("recipient", "").strip()
    body = fields.get("body", fields.get("payload", ""))
    problems = [
        f"{name}: required" for name, value in (("originator", originator), ("recipient", recipient)) if not value
    ]
    if problems:
        raise ValidationError(problems)
    return InboundSms(originator[:32], recipient[:32], body[:1600])


def _timestamp(raw: str) -> dt.datetime | None:
    try:
        value = dt.datetime.fromisoformat(raw.strip())
    except ValueError:
        return None
    return value.astimezone(dt.UTC) if value.tzinfo is not None else None


def alert_reason(report: DeliveryReport) -> str:
    """A short, stable code for the alert's fingerprint: the error code, else the reason's words."""
    if report.error_code is not None:
        return f"error_{report.error_code}"
    words = "".join(ch if ch.isalnum() else "_" for ch in (report.reason or "no_reason").lower())
    return "_".join(part for part in words.split("_") if part)[:40] or "no_reason"


def _folded(text: str) -> str:
    """Upper case without accents, so ARRÊT matches ARRET and "stop" matches STOP."""
    decomposed = unicodedata.normalize("NFKD", text.strip().casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).upper()


def is_stop_reply(body: str, keywords: Sequence[str] = DEFAULT_STOP_KEYWORDS) -> bool:
    """Whether the reply is one of ``keywords`` and nothing else (trimmed, ignoring case, accents and
    trailing punctuation): "Stop!" opts out, "don't stop" does not."""
    word = _folded(body).strip(" \t\r\n.!?,;:")
    return bool(word) and word in {_folded(keyword) for keyword in keywords}


def phone_of(number: str) -> str | None:
    """An inbound originator ("31612345678", "+31 6 1234 5678") as our E.164 phones are stored."""
    digits = "".join(ch for ch in number if ch.isdigit())
    return f"+{digits}" if 8 <= len(digits) <= 15 else None
