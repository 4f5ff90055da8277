"""``customers erase`` on real PostgreSQL: after it, no text column of any table holds the customer's
name, phone number, reference, SMS text or MessageBird id, while their ledger rows stay as anonymous
counts; and a send in flight (a claim not yet committed) is waited for and makes it refuse."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select, text

from tenant_worker.adapters.orm import ReminderRow
from tenant_worker.adapters.sql_storage import SqlUnitOfWork, sql_unit_of_work
from tenant_worker.config import load_settings
from tenant_worker.domain.model import OutboundSms, OutcomeKind, SendOutcome
from tenant_worker.domain.ports import SYSTEM_CLOCK
from tenant_worker.services.customer_ops import erase_customer, show_customer
from tenant_worker.services.sending import send_reminders
from tenant_worker.services.sweep import sweep_tenant
from tests.conftest import RecordingGateway, RecordingQueue, add_customers, customer, new_phone
from tests.fakes import RecordingAlerts

NOW = dt.datetime(2026, 6, 1, 10, 0, tzinfo=dt.UTC)
EXPIRES = dt.date(2026, 6, 4)


class UniqueIdGateway(RecordingGateway):
    """Sends everything, with message ids no other test's rows contain."""

    def send(self, sms: OutboundSms) -> SendOutcome:
        self.sent.append(sms)
        return SendOutcome(OutcomeKind.SENT, provider_id=f"mb-{uuid.uuid4().hex}")


def occurrences(sessions, value: str) -> list[str]:
    """``table.column`` of every text column in the database that contains ``value``."""
    with sessions() as session:
        columns = session.execute(
            text("""
                SELECT table_name, column_name FROM information_schema.columns
                 WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'character')
            """)
        ).all()
        found = []
        for table, column in columns:
            hits = session.execute(
                text(f'SELECT count(*) FROM "{table}" WHERE strpos("{column}", :value) > 0'), {"value": value}
            ).scalar_one()
            if hits:
                found.append(f"{table}.{column}")
    return found


def test_erasure_leaves_no_trace_of_the_customer_in_any_text_column(sessions, make_tenant):
    settings = load_settings({})
    tenant = make_tenant(template="Hi {customer_name}, {days_left} days left.")
    ref, name, phone = f"ref-{uuid.uuid4().hex[:8]}", f"Zygmunta {uuid.uuid4().hex[:8]}", new_phone()
    other = f"other-{uuid.uuid4().hex[:8]}"
    add_customers(sessions, tenant, [customer(ref, EXPIRES, phone=phone, name=name), customer(other, EXPIRES)])
    uow = sql_unit_of_work(sessions)
    queue = RecordingQueue()
    sweep_tenant(uow, tenant.slug, queue, settings, now=NOW)
    with ThreadPoolExecutor(2) as executor:
        send_reminders(uow, tenant.id, queue.ids, UniqueIdGateway(), executor, settings, RecordingAlerts(), NOW)
    # A later window claimed (pending), and an error text that, unlike ours, quotes the number.
    sweep_tenant(uow, tenant.slug, RecordingQueue(), settings, local_date=EXPIRES - dt.timedelta(days=1), now=NOW)
    details = show_customer(uow, tenant.slug, ref)
    sent = next(r for r in details.reminders if r.status == "sent")
    with sessions.begin() as session:
        session.execute(
            text("UPDATE reminders SET last_error = :error WHERE id = :id"),
            {"error": f"recipient {phone} refused", "id": sent.id},
        )
    with sessions() as session:
        body, message_id = session.execute(
            select(ReminderRow.body, ReminderRow.provider_message_id).where(ReminderRow.id == sent.id)
        ).one()
    secrets = [ref, name, phone, phone.lstrip("+"), body, message_id]
    assert name in body and message_id
    assert all(occurrences(sessions, secret) for secret in secrets)

    report = erase_customer(uow, tenant.slug, ref, SYSTEM_CLOCK, wait=0)

    assert (report.erased, report.reminders, report.cancelled) == (True, 2, 1)
    assert report.provider_message_ids == [message_id]
    for secret in secrets:
        assert occurrences(sessions, secret) == [], secret
    # The other customer is untouched.
    assert sorted(occurrences(sessions, other)) == ["customers.external_ref", "customers.name", "reminders.body"]
    with sessions() as session:
        rows = session.execute(
            select(ReminderRow.window_days, ReminderRow.status, ReminderRow.skip_reason, ReminderRow.sent_at)
            .where(ReminderRow.subscription_id == details.customer.subscriptions[0].id)
            .order_by(ReminderRow.id)
        ).all()
    assert [(w, s, r, at is not None) for w, s, r, at in rows] == [
        (3, "sent", None, True),
        (1, "skipped", "removed", False),
    ]


def test_erasure_waits_for_a_claim_in_progress_and_refuses_while_the_reminder_is_being_sent(sessions, make_tenant):
    settings = load_settings({})
    tenant = make_tenant()
    ref = f"ref-{uuid.uuid4().hex[:8]}"
    add_customers(sessions, tenant, [customer(ref, EXPIRES)])
    uow = sql_unit_of_work(sessions)
    queue = RecordingQueue()
    sweep_tenant(uow, tenant.slug, queue, settings, now=NOW)
    # A send task's claim, not committed yet: it holds the row.
    claiming = SqlUnitOfWork(sessions).__enter__()
    assert claiming.ledger(tenant.id).start_sending(queue.ids)
    result = {}
    erasing = threading.Thread(
        target=lambda: result.update(report=erase_customer(uow, tenant.slug, ref, SYSTEM_CLOCK, wait=0))
    )
    erasing.start()
    erasing.join(1.0)
    assert erasing.is_alive(), "the erasure must wait for the claim's row lock"
    claiming.__exit__(None, None, None)  # the claim commits: the row is being sent
    erasing.join(10)
    report = result["report"]
    assert (report.erased, report.sending) == (False, 1)
    assert show_customer(uow, tenant.slug, ref).customer.erased_at is None
