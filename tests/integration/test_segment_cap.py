"""A tenant's max_segments on real PostgreSQL: a reminder that renders over the cap is never sent, ends
``skipped``/``too_long`` and is reported once; the dry run shows the same decision."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select, update

from tenant_worker.adapters.orm import ReminderRow, TenantRow
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.services.sending import send_reminders
from tenant_worker.services.sweep import preview_sweep, sweep_tenant
from tests.conftest import RecordingGateway, RecordingQueue, add_customers, customer
from tests.fakes import RecordingAlerts

NOW = dt.datetime(2026, 6, 1, 10, 0, tzinfo=dt.UTC)


def test_an_sms_rendered_over_the_cap_is_skipped_too_long_and_reported_while_others_are_sent(
    sessions, settings_fixture, make_tenant
):
    tenant = make_tenant(template="Hi {customer_name}, {days_left} days left.")
    expires = dt.date(2026, 6, 4)
    # A name imported before names were bounded, and a name outside GSM-7 (UCS-2: 67 characters per part).
    add_customers(
        sessions,
        tenant,
        [customer("short", expires, name="Ann"), customer("legacy", expires, name="N" * 500),
         customer("polish", expires, name="Łucja " * 12)],
    )  # fmt: skip
    _, _, preview = preview_sweep(sql_unit_of_work(sessions), tenant.slug, dt.date(2026, 6, 1))
    assert sorted(line.skip_reason or "send" for line in preview) == ["send", "send", "too_long"]
    queue = RecordingQueue()
    sweep_tenant(sql_unit_of_work(sessions), tenant.slug, queue, settings_fixture, now=NOW)
    with sessions.begin() as session:
        session.execute(update(TenantRow).where(TenantRow.id == tenant.id).values(max_segments=1))
    alerts = RecordingAlerts()
    gateway = RecordingGateway()
    with ThreadPoolExecutor(2) as executor:
        report = send_reminders(
            sql_unit_of_work(sessions), tenant.id, queue.ids, gateway, executor, settings_fixture, alerts, NOW
        )

    assert (report.sent, report.skipped, report.failed) == (1, 2, 0)
    assert [sms.body for sms in gateway.sent] == ["Hi Ann, 3 days left."]
    with sessions() as session:
        rows = session.scalars(select(ReminderRow).where(ReminderRow.tenant_id == tenant.id)).all()
    skipped = sorted(r.id for r in rows if (r.status, r.skip_reason) == ("skipped", "too_long"))
    assert len(skipped) == 2
    # One report for the batch's incident (tenant, skipped, too_long), naming both reminders.
    [(slug, status, reason, ids, error)] = alerts.ended
    assert (slug, status, reason, sorted(ids)) == (tenant.slug, "skipped", "too_long", skipped)
    assert error is not None and "the tenant allows 1" in error and "Łucja" not in error
    rows_by_id = {r.id: r for r in rows}
    assert {rows_by_id[i].segments for i in skipped} == {2, 4}
