"""Opt-out by reply: a customer who answers STOP to a reminder gets no more of them.

MessageBird forwards SMS sent to our numbers (a tenant's numeric originator). A reply that is exactly
a stop keyword (``domain.delivery.is_stop_reply``: STOP and its equivalents in our tenants' locales,
``STOP_KEYWORDS`` to change them) opts out every customer with the sender's number among the tenants
texting from the number it was sent to, through the same ``customer_ops.opt_out_customer`` as the
CLI: the tenant's sweep lock first, then ``opted_out``/``opted_out_at``, then their pending
reminders skipped as ``opted_out``. A second STOP changes nothing. Other replies are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tenant_worker.domain.delivery import InboundSms, is_stop_reply, phone_of
from tenant_worker.domain.storage import UnitOfWorkFactory
from tenant_worker.services.customer_ops import ChangeReport, opt_out_customer


@dataclass
class ReplyReport:
    """What a reply did: ``stop`` whether it asked to stop; one change report per customer found."""

    stop: bool
    opted_out: list[ChangeReport] = field(default_factory=list)


def handle_reply(uow: UnitOfWorkFactory, sms: InboundSms, keywords: Sequence[str]) -> ReplyReport:
    """Opt out the sender if the reply is a stop keyword (see the module docs)."""
    if not is_stop_reply(sms.body, keywords):
        return ReplyReport(stop=False)
    phone = phone_of(sms.originator)
    if phone is None:
        return ReplyReport(stop=True)
    with uow() as tx:
        found = [
            (slug, ref)
            for slug in tx.receipts.tenants_for_number(sms.recipient)
            for ref in tx.receipts.customers_with_phone(tx.catalog.find_tenant(slug).id, phone)
        ]
    return ReplyReport(stop=True, opted_out=[opt_out_customer(uow, slug, ref) for slug, ref in found])
