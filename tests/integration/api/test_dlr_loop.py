"""The delivery-receipt loop end to end: a real worker sends through the MessageBird emulator with a
``reportUrl``, the emulator posts signed status reports (late, repeated, out of order, some failed)
to a real API server, and the ledger ends with each SMS's final status."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from tenant_worker import constants
from tenant_worker.adapters.celery_publisher import CeleryReminderQueue
from tenant_worker.adapters.orm import ReminderRow
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.celery_app import create_app
from tenant_worker.constants import DLR_PATH
from tenant_worker.services.sweep import sweep_tenant
from tenant_worker.services.tenants import local_today
from tenant_worker_dev.emulators.messagebird import MessageBirdEmulator, ReportPolicy
from tests.conftest import ACCESS_KEY, add_customers, customer, new_phone, put_on_queue, redis_db_url, wait_until
from tests.integration.api import dlr_server
from tests.integration.api.conftest import ApiServer
from tests.integration.api.dlr_server import PUBLIC, SIGNING_KEY

SHARD = 14
LOOP_REDIS_DB = 29  # the loop worker's own broker: no other worker takes its tasks

dlr_api = dlr_server.dlr_api  # the fixture, in this module's scope


def test_sent_sms_end_with_the_status_messagebird_reports(
    dlr_api: ApiServer, sessions, make_tenant, redis_url, start_worker
) -> None:
    tenant = put_on_queue(sessions, make_tenant(), constants.shard_queue(SHARD))
    phones = [new_phone() for _ in range(4)]
    due = local_today(tenant.timezone) + dt.timedelta(days=3)
    add_customers(sessions, tenant, [customer(f"c{i}", due, phone) for i, phone in enumerate(phones)])
    policy = ReportPolicy(SIGNING_KEY, delay=0.2, duplicates=2, out_of_order=True, deliver_to=dlr_api.url)
    with MessageBirdEmulator(access_key=ACCESS_KEY, reports=policy) as emulator:
        assert emulator.reports is not None
        emulator.reports.set_outcome(phones[0], "delivery_failed")
        worker = start_worker(
            "--shards", str(SHARD), REDIS_URL=redis_db_url(redis_url, LOOP_REDIS_DB),
            MESSAGEBIRD_ENDPOINT=emulator.url, PUBLIC_BASE_URL=PUBLIC,
        )  # fmt: skip
        sweep_tenant(
            sql_unit_of_work(sessions), tenant.slug, CeleryReminderQueue(create_app(worker.settings)), worker.settings
        )

        def final() -> list[ReminderRow] | None:
            with sessions() as session:
                rows = session.scalars(select(ReminderRow).where(ReminderRow.tenant_id == tenant.id)).all()
            done = len(rows) == 4 and all(r.delivery_status in ("delivered", "delivery_failed") for r in rows)
            return list(rows) if done else None

        rows = wait_until(final, 30, "every reminder's final delivery status")
        reports = emulator.reports.wait_for(4 * 4)  # buffered, the final status and two duplicates each
        accepted = emulator.accepted()

    by_phone = {r.recipients[0]: r for r in accepted}
    assert {r.report_url for r in accepted} == {PUBLIC + DLR_PATH}
    assert sorted(r.reference for r in accepted) == sorted(str(row.id) for row in rows)
    assert all(report.answer == 200 for report in reports)
    statuses = {row.id: row.delivery_status for row in rows}
    failed_id = int(by_phone[phones[0].lstrip("+")].reference or 0)
    assert statuses.pop(failed_id) == "delivery_failed"
    assert set(statuses.values()) == {"delivered"}  # the late "buffered" overwrote nothing
    assert all(row.status == "sent" for row in rows)
