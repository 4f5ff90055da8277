"""Tenant isolation, template validation on save, and customer import on the real database."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from tenant_worker.adapters.orm import CustomerRow, ReminderRow, SmsTemplateRow
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.domain.model import ValidationError
from tenant_worker.domain.templates import TemplateError
from tenant_worker.services.customers import import_customers
from tenant_worker.services.sweep import sweep_tenant
from tenant_worker.services.tenants import save_template
from tests.conftest import RecordingQueue, add_customers, customer

DAY = dt.date(2026, 6, 1)


def count(sessions, model, tenant_id):
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(model.tenant_id == tenant_id))


def test_tenant_a_sweep_never_touches_tenant_b(sessions, settings, make_tenant):
    a, b = make_tenant(), make_tenant()
    add_customers(sessions, a, [customer("same-ref", DAY + dt.timedelta(days=3))])
    add_customers(sessions, b, [customer("same-ref", DAY + dt.timedelta(days=3))])
    queue = RecordingQueue()
    sweep_tenant(sql_unit_of_work(sessions), a.slug, queue, settings, DAY)
    assert count(sessions, ReminderRow, a.id) == 1
    assert count(sessions, ReminderRow, b.id) == 0
    assert {tenant_id for tenant_id, _ in queue.batches} == {a.id}


def test_a_repository_for_tenant_a_cannot_read_or_send_tenant_b_reminders(sessions, settings, make_tenant):
    a, b = make_tenant(), make_tenant()
    add_customers(sessions, b, [customer("b1", DAY + dt.timedelta(days=1))])
    queue = RecordingQueue()
    sweep_tenant(sql_unit_of_work(sessions), b.slug, queue, settings, DAY)
    [b_reminder] = queue.ids
    with sql_unit_of_work(sessions)() as tx:
        repo_a = tx.ledger(a.id)
        assert repo_a.start_sending([b_reminder]) == []
        assert repo_a.list_reminders() == []
    with sql_unit_of_work(sessions)() as tx:
        assert [(r.id, r.status) for r in tx.ledger(b.id).list_reminders()] == [(b_reminder, "pending")]


def test_template_with_unknown_placeholder_is_rejected_when_saved_and_nothing_is_stored(sessions, make_tenant):
    tenant = make_tenant()
    for bad in ("Hi {first_name}", "Hi {customer_name.__class__}", "Hi {x[0]}", "Hi {customer_name[0]}"):
        with pytest.raises(TemplateError), sql_unit_of_work(sessions)() as tx:
            save_template(tx, tenant.slug, bad, window_days=1)
    with sql_unit_of_work(sessions)() as tx:
        assert [t.body for t in tx.catalog.templates(tenant.id)] != []
    with sessions() as session:
        assert (
            session.scalar(
                select(func.count()).select_from(SmsTemplateRow).where(SmsTemplateRow.tenant_id == tenant.id)
            )
            == 1
        )


def test_unknown_tenant_is_a_clear_error(sessions):
    with pytest.raises(ValidationError, match="unknown tenant 'no-such-tenant'"), sql_unit_of_work(sessions)() as tx:
        import_customers(tx, "no-such-tenant", "external_ref,name,phone,plan,amount,currency,expires_on\n")


def test_a_file_with_one_bad_row_imports_nothing(sessions, make_tenant):
    tenant = make_tenant()
    text = (
        "external_ref,name,phone,plan,amount,currency,expires_on\n"
        "a,Ann,+31612340001,Fiber,10.00,EUR,2026-07-01\n"
        "b,Bob,+31 6 not a number,Fiber,10.00,EUR,2026-07-01\n"
    )
    with pytest.raises(ValidationError) as caught, sql_unit_of_work(sessions)() as tx:
        import_customers(tx, tenant.slug, text)
    assert caught.value.problems[0].startswith("line 3:")
    assert count(sessions, CustomerRow, tenant.id) == 0


def test_reimport_updates_rows_and_counts_renewals(sessions, make_tenant):
    tenant = make_tenant()
    header = "external_ref,name,phone,plan,amount,currency,expires_on\n"
    first = header + "a,Ann,+31612340001,Fiber,10.00,EUR,2026-07-01\nb,Bob,0612340002,Fiber,10,eur,2026-07-02\n"
    second = header + "a,Ann,+31612340001,Fiber,10.00,EUR,2026-08-01\nb,Bob B,0612340002,Fiber,10,EUR,2026-07-02\n"
    with sql_unit_of_work(sessions)() as tx:
        created = import_customers(tx, tenant.slug, first, "NL")
    with sql_unit_of_work(sessions)() as tx:
        again = import_customers(tx, tenant.slug, second, "NL")
    with sql_unit_of_work(sessions)() as tx:
        same = import_customers(tx, tenant.slug, second, "NL")
    assert (created.created, again.updated, again.renewed, same.unchanged) == (2, 2, 1, 2)
    assert count(sessions, CustomerRow, tenant.id) == 2
