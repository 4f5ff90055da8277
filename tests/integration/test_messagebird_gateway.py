"""The MessageBird adapter against the HTTP emulator: classification and requests kept in flight."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

from tenant_worker.adapters.messagebird import MessageBirdGateway
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.domain.model import AccessCheck, OutboundSms, OutcomeKind
from tenant_worker.domain.ports import NoAlerts
from tenant_worker.services.sending import send_reminders
from tenant_worker.services.sweep import sweep_tenant
from tenant_worker_dev.emulators.messagebird import Fault, MessageBirdEmulator
from tests.conftest import ACCESS_KEY, RecordingQueue, add_customers, customer, free_port, new_phone


def sms(phone: str, reference: str = "1") -> OutboundSms:
    return OutboundSms(reference, "AcmeFiber", phone, "Your subscription expires soon")


def test_gateway_classifies_each_kind_of_answer(emulator):
    gateway = MessageBirdGateway(ACCESS_KEY, emulator.url, read_timeout=0.5)
    cases = {Fault.status(422): OutcomeKind.FAILED, Fault.status(401): OutcomeKind.REJECTED_KEY,
             Fault.status(429): OutcomeKind.RETRY, Fault.status(500): OutcomeKind.RETRY,
             Fault.status(502): OutcomeKind.RETRY, Fault.slow(1.0): OutcomeKind.UNKNOWN}  # fmt: skip
    for fault, expected in cases.items():
        phone = new_phone()
        emulator.add_faults(phone, [fault])
        assert gateway.send(sms(phone)).kind == expected, fault
    outcome = gateway.send(sms(new_phone(), "42"))
    assert outcome.kind == OutcomeKind.SENT and outcome.provider_id
    assert emulator.accepted()[-1].reference == "42"
    gateway.close()


def test_wrong_access_key_is_a_rejected_key_and_connection_refused_is_retried():
    with MessageBirdEmulator(access_key="right") as server:
        wrong = MessageBirdGateway("wrong", server.url)
        assert wrong.send(sms(new_phone())).kind == OutcomeKind.REJECTED_KEY
        assert wrong.check_access() == AccessCheck.REJECTED
        assert MessageBirdGateway("right", server.url).check_access() == AccessCheck.OK
        assert server.accepted() == []
    nobody = MessageBirdGateway(ACCESS_KEY, f"http://127.0.0.1:{free_port()}")
    assert nobody.send(sms(new_phone())).kind == OutcomeKind.RETRY
    assert nobody.check_access() == AccessCheck.UNREACHABLE


def test_one_worker_process_keeps_many_requests_in_flight(sessions, settings, make_tenant):
    tenant = make_tenant()
    day = dt.date(2026, 5, 1)
    add_customers(sessions, tenant, [customer(f"c{i}", day + dt.timedelta(days=3)) for i in range(40)])
    queue = RecordingQueue()
    sweep_tenant(sql_unit_of_work(sessions), tenant.slug, queue, settings, day)
    with MessageBirdEmulator(access_key=ACCESS_KEY, latency=0.2) as slow:
        gateway = MessageBirdGateway(ACCESS_KEY, slow.url, pool_size=settings.max_in_flight)
        with ThreadPoolExecutor(settings.max_in_flight) as executor:
            uow = sql_unit_of_work(sessions)
            at = dt.datetime(2026, 5, 1, 10, tzinfo=dt.UTC)
            report = send_reminders(uow, tenant.id, queue.ids, gateway, executor, settings, NoAlerts(), now=at)
        assert report.sent == 40
        assert slow.max_in_flight >= 20
        assert len(slow.accepted()) == 40


def test_duplicated_task_delivery_sends_each_reminder_once(sessions, settings, make_tenant, emulator):
    tenant = make_tenant()
    day = dt.date(2026, 5, 1)
    records = [customer(f"c{i}", day + dt.timedelta(days=1)) for i in range(10)]
    add_customers(sessions, tenant, records)
    queue = RecordingQueue()
    sweep_tenant(sql_unit_of_work(sessions), tenant.slug, queue, settings, day)
    gateway = MessageBirdGateway(ACCESS_KEY, emulator.url)
    now = dt.datetime(2026, 5, 1, 10, tzinfo=dt.UTC)
    uow = sql_unit_of_work(sessions)
    with ThreadPoolExecutor(8) as senders, ThreadPoolExecutor(3) as deliveries:
        runs = [
            deliveries.submit(send_reminders, uow, tenant.id, queue.ids, gateway, senders, settings, NoAlerts(), now)
            for _ in range(3)
        ]
        reports = [run.result() for run in runs]
    assert sum(r.sent for r in reports) == 10
    phones = {c.phone.lstrip("+") for c in records}
    assert len([r for r in emulator.requests() if set(r.recipients) & phones]) == 10


def test_every_sms_asks_for_status_reports_only_when_a_report_url_is_configured(emulator):
    phone = new_phone()
    with_url = MessageBirdGateway(ACCESS_KEY, emulator.url, report_url="https://tw.example/v1/dlr/messagebird")
    without = MessageBirdGateway(ACCESS_KEY, emulator.url)
    try:
        assert with_url.send(sms(phone, "7")).kind == OutcomeKind.SENT
        assert without.send(sms(phone, "8")).kind == OutcomeKind.SENT
    finally:
        with_url.close()
        without.close()
    mine = {r.reference: r.report_url for r in emulator.accepted() if phone.lstrip("+") in r.recipients}
    assert mine == {"7": "https://tw.example/v1/dlr/messagebird", "8": None}
