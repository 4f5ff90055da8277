"""Sentry events from the real worker: one per final failure, tagged, with no personal data."""

from __future__ import annotations

import datetime as dt

from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.services.sweep import sweep_tenant
from tenant_worker.services.tenants import local_today
from tenant_worker_dev.emulators.messagebird import Fault
from tests.conftest import add_customers, customer, new_phone, wait_for_idle_worker, wait_until
from tests.integration.test_sending import reminders, settled


def events_for(recorder, slug):
    return [e for e in recorder.events() if (e.get("tags") or {}).get("tenant") == slug]


def sentinel_event(sessions, settings, queue, make_tenant, emulator, recorder, worker_log):
    """Wait until every Sentry event the worker has captured so far has reached ``recorder``, so that a
    test can then assert that an event was *not* sent.

    Once the worker has ended every task it received, their events are captured. The worker is one
    process (threads pool) whose sentry-sdk sends envelopes from one background thread, in order, so
    the event of another tenant's final failure, captured after that, arrives after all of them."""
    wait_for_idle_worker(worker_log, "before the sentinel")
    sentinel, phone = make_tenant(), new_phone()
    emulator.add_faults(phone, [Fault.status(422)])
    add_customers(sessions, sentinel, [customer("s", local_today(sentinel.timezone) + dt.timedelta(days=1), phone)])
    sweep_tenant(sql_unit_of_work(sessions), sentinel.slug, queue, settings)
    wait_until(lambda: events_for(recorder, sentinel.slug), 15, "the sentinel's Sentry event")


def test_send_that_fails_for_good_produces_one_scrubbed_event_tagged_with_the_tenant(
    sessions, settings, queue, make_tenant, emulator, sentry_recorder, celery_worker
):
    tenant = make_tenant(template="Dear {customer_name}, pay {amount} {currency} for {plan} by {expires_on}")
    phone = new_phone()
    emulator.add_faults(phone, [Fault.status(422)])
    record = customer("z", local_today(tenant.timezone) + dt.timedelta(days=3), phone, name="Zelda Quartermaine")
    add_customers(sessions, tenant, [record])
    sweep_tenant(sql_unit_of_work(sessions), tenant.slug, queue, settings)
    [row] = settled(sessions, tenant.id, 1)
    assert row.status == "failed"

    [event] = wait_until(lambda: events_for(sentry_recorder, tenant.slug), 15, "the Sentry event")
    assert event["tags"]["reminder_status"] == "failed"
    sentinel_event(sessions, settings, queue, make_tenant, emulator, sentry_recorder, celery_worker)
    assert len(events_for(sentry_recorder, tenant.slug)) == 1
    raw = b"".join(sentry_recorder.raw()).decode("utf-8", "replace")
    assert tenant.slug in raw
    for secret in (phone, phone.lstrip("+"), record.name, "Quartermaine", row.body or "Dear Zelda"):
        assert secret not in raw


def test_send_that_will_be_retried_produces_no_event(
    sessions, settings, queue, make_tenant, emulator, sentry_recorder, celery_worker
):
    tenant = make_tenant()
    phone = new_phone()
    emulator.add_faults(phone, [Fault.status(429), Fault.status(500)])
    add_customers(sessions, tenant, [customer("r", local_today(tenant.timezone) + dt.timedelta(days=1), phone)])
    sweep_tenant(sql_unit_of_work(sessions), tenant.slug, queue, settings)
    [row] = settled(sessions, tenant.id, 1)
    assert row.status == "sent"
    sentinel_event(sessions, settings, queue, make_tenant, emulator, sentry_recorder, celery_worker)
    assert events_for(sentry_recorder, tenant.slug) == []
    assert reminders(sessions, tenant.id)[0].attempts == 3
