"""Operations on one customer: show, remove, opt out, erase (``tenant-worker customers ...``).

Each runs in one unit of work that first takes the tenant's sweep lock (with the dispatch lock, in the
sweep's order), so a sweep running at the same moment either claimed before it (and its pending rows
are cancelled here) or claims after it (and sees the customer removed or opted out): no reminder
slips through. Cancelling is one ``UPDATE ... WHERE status = 'pending'``, atomic against a send
task's ``pending -> sending`` claim, so a cancelled reminder is never sent; one already ``sending``
cannot be stopped and is reported.

**Erasure** (the right to erasure) overwrites the customer's personal data in place rather than
deleting the rows, so the ledger's anonymous counts stay (statuses, windows, dates): the name is
emptied, the phone set to NULL, the customer's ``external_ref`` replaced by a random token and each
subscription's by ``erased-<id>``; on their reminders the rendered SMS (``body``), MessageBird's
message id (it finds the recipient and text in MessageBird's logs) and ``last_error`` (MessageBird's
wording is not ours to vouch for) are cleared. Plans, amounts, currencies and dates stay: without a
name, number or reference they identify nobody.

It is refused while any of the customer's reminders is ``sending``: that send task holds the name and
number in memory and records the rendered text (with the name) and the message id when MessageBird
answers, after the erasure would have committed. The reminders are locked first (``FOR UPDATE``), so
a claim or an outcome in progress is waited for and seen, and none can start until the erasure
commits. The service retries for up to ``wait`` seconds (a send ends within MessageBird's timeouts).

Afterwards the old reference is unknown: importing it again creates a **new** customer with a fresh
reminder cycle. Erasure means no link to the old rows is kept (not even a hash of the reference,
which a short reference would make reversible); the tenant, as controller, must stop exporting a
customer it wants forgotten.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from tenant_worker.domain.model import ReminderStatus, SkipReason, ValidationError
from tenant_worker.domain.ports import Clock
from tenant_worker.domain.records import CustomerView, ReminderView, Tenant
from tenant_worker.domain.storage import Ledger, UnitOfWork, UnitOfWorkFactory

# How long `erase` waits, by default, for the customer's reminders being sent to finish, and between looks.
ERASE_WAIT_SECONDS = 30.0
ERASE_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class CustomerDetails:
    """A customer, their subscriptions and their reminders (``customers show``)."""

    tenant: str
    customer: CustomerView
    reminders: list[ReminderView]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the phone in full: this is for programs, e.g. a subject access request)."""
        customer = self.customer
        return {
            "tenant": self.tenant,
            "external_ref": customer.external_ref,
            "name": customer.name,
            "phone": customer.phone,
            "opted_out": customer.opted_out,
            "opted_out_at": customer.opted_out_at,
            "locale": customer.locale,
            "removed_at": customer.removed_at,
            "erased_at": customer.erased_at,
            "subscriptions": [asdict(subscription) for subscription in customer.subscriptions],
            "reminders": [
                {
                    "id": r.id,
                    "subscription_id": r.subscription_id,
                    "expires_on": r.expires_on,
                    "window_days": r.window_days,
                    "status": r.status,
                    "skip_reason": r.skip_reason,
                    "sent_at": r.sent_at,
                }
                for r in self.reminders
            ],
        }


@dataclass
class ChangeReport:
    """What ``remove`` or ``opt-out`` changed: ``changed`` False means it was already so (nothing done)."""

    tenant: str
    customer: str
    action: str
    changed: bool = False
    cancelled: int = 0
    # Reminders a send task holds right now: they cannot be stopped and may still be delivered.
    sending: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass
class EraseReport:
    """What ``erase`` did; ``erased`` False: refused because reminders were still being sent."""

    tenant: str
    customer: str
    erased: bool = False
    subscriptions: int = 0
    reminders: int = 0
    cancelled: int = 0
    sending: int = 0
    # MessageBird's ids of the customer's messages, cleared from the ledger: MessageBird keeps its own
    # logs (recipient and text), and erasing there needs these ids.
    provider_message_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


class CustomerNotFound(ValidationError):
    """No customer has this reference (never imported, or erased); the HTTP API answers 404."""


def _customer(tx: UnitOfWork, tenant: Tenant, ref: str, lock: bool = False) -> CustomerView:
    customer = tx.catalog.find_customer(tenant.id, ref, lock=lock)
    if customer is None:
        raise CustomerNotFound(
            [
                f"unknown customer {ref!r} of tenant {tenant.slug!r} "
                "(never imported, or erased: an erased reference is gone)"
            ]
        )
    return customer


def _locked(tx: UnitOfWork, slug: str, ref: str) -> tuple[CustomerView, Ledger]:
    """The tenant's sweep (and dispatch) lock taken, in the sweep's order, then the customer, locked."""
    tenant = tx.catalog.find_tenant(slug)
    ledger = tx.ledger(tenant.id)
    ledger.lock_for_sweep_and_dispatch()
    return _customer(tx, tenant, ref, lock=True), ledger


def _sending(rows: list[ReminderView]) -> int:
    return sum(1 for row in rows if row.status == ReminderStatus.SENDING)


def show_customer(uow: UnitOfWorkFactory, slug: str, ref: str) -> CustomerDetails:
    """The customer ``ref`` of tenant ``slug`` with their subscriptions and reminders."""
    with uow() as tx:
        tenant = tx.catalog.find_tenant(slug)
        customer = _customer(tx, tenant, ref)
        reminders = tx.ledger(tenant.id).reminders_of(customer.subscription_ids)
    return CustomerDetails(slug, customer, reminders)


def remove_customer(uow: UnitOfWorkFactory, slug: str, ref: str) -> ChangeReport:
    """Remove the customer and their subscriptions (never swept again) and cancel their pending
    reminders as ``skipped``/``removed``. Running it again changes nothing."""
    report = ChangeReport(slug, ref, "remove")
    with uow() as tx:
        customer, ledger = _locked(tx, slug, ref)
        ids = customer.subscription_ids
        report.changed = tx.catalog.remove_customer(ledger.tenant_id, customer.id)
        report.cancelled = ledger.cancel_pending_of(ids, SkipReason.REMOVED.value)
        report.sending = _sending(ledger.reminders_of(ids))
    return report


def opt_out_customer(uow: UnitOfWorkFactory, slug: str, ref: str, opted_out: bool = True) -> ChangeReport:
    """Opt the customer out (future claims record ``skipped``/``opted_out``) and cancel their pending
    reminders the same way; ``opted_out=False`` opts them back in (cancelled reminders stay cancelled:
    the next window is claimed as usual)."""
    report = ChangeReport(slug, ref, "opt-out" if opted_out else "opt-in")
    with uow() as tx:
        customer, ledger = _locked(tx, slug, ref)
        ids = customer.subscription_ids
        report.changed = tx.catalog.set_opted_out(ledger.tenant_id, customer.id, opted_out)
        if opted_out:
            report.cancelled = ledger.cancel_pending_of(ids, SkipReason.OPTED_OUT.value)
            report.sending = _sending(ledger.reminders_of(ids))
    return report


class _Busy(Exception):
    """Reminders of the customer are being sent: leave the unit of work without changing anything."""

    def __init__(self, sending: int) -> None:
        super().__init__(f"{sending} reminders being sent")
        self.sending = sending


def erase_customer(
    uow: UnitOfWorkFactory,
    slug: str,
    ref: str,
    clock: Clock,
    wait: float = ERASE_WAIT_SECONDS,
    poll: float = ERASE_POLL_SECONDS,
    token: Callable[[], str] | None = None,
) -> EraseReport:
    """Erase the customer's personal data everywhere (see the module docs), or, while any of their
    reminders is being sent after ``wait`` seconds of retrying, change nothing (``erased`` False)."""
    deadline = clock.monotonic() + wait
    new_token = token or (lambda: f"erased-{uuid.uuid4().hex}")
    while True:
        try:
            return _erase_once(uow, slug, ref, new_token())
        except _Busy as busy:
            if clock.monotonic() + poll > deadline:
                return EraseReport(slug, ref, sending=busy.sending)
            clock.sleep(poll)


def _erase_once(uow: UnitOfWorkFactory, slug: str, ref: str, token: str) -> EraseReport:
    report = EraseReport(slug, ref)
    with uow() as tx:
        customer, ledger = _locked(tx, slug, ref)
        ids = customer.subscription_ids
        rows = ledger.reminders_of(ids, lock=True)
        sending = _sending(rows)
        if sending:
            raise _Busy(sending)  # rolls back: nothing changed
        report.cancelled = ledger.cancel_pending_of(ids, SkipReason.REMOVED.value)
        report.provider_message_ids = [r.provider_message_id for r in rows if r.provider_message_id]
        report.reminders = ledger.erase_reminders_of(ids)
        tx.catalog.erase_customer(ledger.tenant_id, customer.id, token)
        report.subscriptions = len(ids)
        report.erased = True
    return report
