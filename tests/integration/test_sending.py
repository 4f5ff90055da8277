"""Sending through a real Celery worker, password-protected Redis and the MessageBird emulator."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from tenant_worker.adapters.cldr import format_day
from tenant_worker.adapters.orm import ReminderRow
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.constants import DEFAULT_SHARD_COUNT
from tenant_worker.domain.model import TenantSpec
from tenant_worker.services.sweep import sweep_tenant
from tenant_worker.services.tenants import create_tenant, local_today, save_template
from tenant_worker_dev.emulators.messagebird import Fault
from tests.conftest import (
    ALWAYS_OPEN,
    add_customers,
    customer,
    new_phone,
    unique_slug,
    wait_for_idle_worker,
    wait_until,
)


def reminders(sessions, tenant_id):
    with sessions() as session:
        return session.scalars(
            select(ReminderRow).where(ReminderRow.tenant_id == tenant_id).order_by(ReminderRow.id)
        ).all()


def settled(sessions, tenant_id, count):
    """Wait until ``count`` reminders exist and none is pending or sending."""

    def done():
        rows = reminders(sessions, tenant_id)
        return rows if len(rows) == count and all(r.status not in ("pending", "sending") for r in rows) else None

    return wait_until(done, 30, f"{count} reminders to settle")


def requests_to(emulator, phone):
    digits = phone.lstrip("+")
    return [r for r in emulator.requests() if digits in r.recipients]


def sweep_sentinel(sessions, settings, queue, tenant, worker_log, settled_so_far):
    """Run the worker past every send task of ``tenant`` published so far, so that a test can then
    assert that something did *not* happen.

    Once the worker has ended every task it received, their retries and follow-up batches are
    published. One more due reminder, swept now, is published behind them on the tenant's queue (a
    Redis list, taken in order), so when it is settled and the worker has again ended everything it
    received, every task published before it has run. Returns the sentinel's phone."""
    wait_for_idle_worker(worker_log, "before the sentinel")
    phone = new_phone()
    add_customers(sessions, tenant, [customer("sentinel", local_today(tenant.timezone) + dt.timedelta(days=1), phone)])
    assert sweep_tenant(sql_unit_of_work(sessions), tenant.slug, queue, settings).enqueued == 1
    assert settled(sessions, tenant.id, settled_so_far + 1)[-1].status == "sent"  # the newest row
    wait_for_idle_worker(worker_log, "after the sentinel")
    return phone


def test_two_customers_of_one_tenant_are_texted_in_their_own_languages(
    sessions, settings, queue, uow, emulator, celery_worker
):
    spec = TenantSpec(unique_slug(), "Bxl Fiber", "Europe/Brussels", "BxlFiber", "nl_BE", (5, 3, 1),
                      sending_window=ALWAYS_OPEN)  # fmt: skip
    with uow() as tx:
        tenant = create_tenant(tx, spec, "Nog {days_left} {days_left|dag|dagen}: betaal {amount} voor {expires_on}.",
                               shard_count=DEFAULT_SHARD_COUNT)  # fmt: skip
        save_template(tx, tenant.slug, "Encore {days_left} {days_left|jour|jours} : payez {amount}.", locale="fr")
    today = local_today(tenant.timezone)
    due = today + dt.timedelta(days=3)
    records = [customer("nl", due, locale="nl_BE"), customer("fr", due, locale="fr_BE"), customer("any", due)]
    add_customers(sessions, tenant, records)

    assert sweep_tenant(sql_unit_of_work(sessions), tenant.slug, queue, settings).enqueued == 3
    rows = settled(sessions, tenant.id, 3)

    bodies = {r.recipients[0]: r.body for r in emulator.accepted() if r.reference in {str(row.id) for row in rows}}
    dutch = f"Nog 3 dagen: betaal € 29,95 voor {format_day(due, 'nl_BE')}."
    assert bodies == {
        records[0].phone.lstrip("+"): dutch,
        records[1].phone.lstrip("+"): "Encore 3 jours : payez 29,95 €.",  # no-break spaces made GSM-7
        records[2].phone.lstrip("+"): dutch,  # no locale of their own: the tenant's
    }
    assert {row.encoding for row in rows} == {"GSM-7"}


def test_sweep_sends_each_due_reminder_once_with_the_rendered_template(
    sessions, settings, queue, make_tenant, emulator, celery_worker
):
    tenant = make_tenant(template="{org_name}: {customer_name}, {plan} ends {expires_on} ({days_left}d). Pay {amount}")
    today = local_today(tenant.timezone)
    records = [customer(f"c{i}", today + dt.timedelta(days=days)) for i, days in enumerate([1, 3, 5, 2, 9, 0])]
    add_customers(sessions, tenant, records)

    report = sweep_tenant(sql_unit_of_work(sessions), tenant.slug, queue, settings)
    assert (report.claimed, report.enqueued) == (4, 4)
    rows = settled(sessions, tenant.id, 4)
    assert {r.status for r in rows} == {"sent"}

    by_ref = {r.reference: r for r in emulator.accepted() if r.reference in {str(row.id) for row in rows}}
    assert len(by_ref) == 4
    for row in rows:
        sms = by_ref[str(row.id)]
        record = next(c for c in records if c.expires_on == row.expires_on)
        days = (record.expires_on - today).days
        assert sms.originator == "AcmeFiber"
        assert sms.recipients == [record.phone.lstrip("+")]
        # The tenant's locale (en) writes the date and the amount with its currency.
        expires = format_day(record.expires_on, tenant.locale)
        assert sms.body == f"Acme Fiber: {record.name}, Fiber 100 ends {expires} ({days}d). Pay €29.95"
        assert row.body == sms.body and row.provider_message_id == sms.message_id and row.segments == 1
        assert len(requests_to(emulator, record.phone)) == 1

    again = sweep_tenant(sql_unit_of_work(sessions), tenant.slug, queue, settings)
    assert (again.claimed, again.enqueued, again.re_enqueued) == (0, 0, 0)
    sweep_sentinel(sessions, settings, queue, tenant, celery_worker, settled_so_far=4)
    assert sum(len(requests_to(emulator, c.phone)) for c in records) == 4


def test_rejected_message_fails_without_retry(sessions, settings, queue, make_tenant, emulator, celery_worker):
    tenant = make_tenant()
    phone = new_phone()
    emulator.add_faults(phone, [Fault.status(422)])
    add_customers(sessions, tenant, [customer("x", local_today(tenant.timezone) + dt.timedelta(days=3), phone)])
    sweep_tenant(sql_unit_of_work(sessions), tenant.slug, queue, settings)
    [row] = settled(sessions, tenant.id, 1)
    assert row.status == "failed" and row.attempts == 1
    assert "MessageBird refused" in (row.last_error or "")
    sweep_sentinel(sessions, settings, queue, tenant, celery_worker, settled_so_far=1)
    assert len(requests_to(emulator, phone)) == 1


def test_rate_limited_and_server_errors_are_retried_then_sent(
    sessions, settings, queue, make_tenant, emulator, celery_worker
):
    tenant = make_tenant()
    phone = new_phone()
    emulator.add_faults(phone, [Fault.status(429), Fault.status(500), Fault.status(503)])
    add_customers(sessions, tenant, [customer("x", local_today(tenant.timezone) + dt.timedelta(days=1), phone)])
    sweep_tenant(sql_unit_of_work(sessions), tenant.slug, queue, settings)
    [row] = settled(sessions, tenant.id, 1)
    assert (row.status, row.attempts) == ("sent", 4)
    statuses = [r.status for r in requests_to(emulator, phone)]
    assert statuses == [429, 500, 503, 201]


def test_retries_give_up_after_the_attempt_limit_and_fail(
    sessions, settings, queue, make_tenant, emulator, celery_worker
):
    tenant = make_tenant()
    phone = new_phone()
    emulator.add_faults(phone, [Fault.status(500)] * 6)
    add_customers(sessions, tenant, [customer("x", local_today(tenant.timezone) + dt.timedelta(days=1), phone)])
    sweep_tenant(sql_unit_of_work(sessions), tenant.slug, queue, settings)
    [row] = settled(sessions, tenant.id, 1)
    assert (row.status, row.attempts) == ("failed", settings.send_max_attempts)
    assert "gave up after 4 attempts" in (row.last_error or "")
    assert len(requests_to(emulator, phone)) == settings.send_max_attempts


def test_answer_slower_than_the_read_timeout_is_unknown_and_never_resent(
    sessions, settings, queue, make_tenant, emulator, celery_worker
):
    tenant = make_tenant()
    phone = new_phone()
    emulator.add_faults(phone, [Fault.slow(settings.http_read_timeout + 1.0)])
    add_customers(sessions, tenant, [customer("x", local_today(tenant.timezone) + dt.timedelta(days=5), phone)])
    sweep_tenant(sql_unit_of_work(sessions), tenant.slug, queue, settings)
    [row] = settled(sessions, tenant.id, 1)
    assert row.status == "unknown" and "read timeout" in (row.last_error or "")
    wait_until(lambda: len(emulator_accepted_for(emulator, phone)) == 1, 5, "the slow message to be accepted")
    # The sentinel's sweep is also the second sweep, which must leave the unknown reminder alone.
    sweep_sentinel(sessions, settings, queue, tenant, celery_worker, settled_so_far=1)
    assert len(requests_to(emulator, phone)) == 1


def emulator_accepted_for(emulator, phone):
    return [r for r in emulator.accepted() if phone.lstrip("+") in r.recipients]


def test_worker_banner_hides_the_redis_password(celery_worker):
    log = celery_worker.read_text(errors="replace")
    assert "redis://:**@127.0.0.1" in log
    assert "s3cr" not in log and "pass word" not in log
