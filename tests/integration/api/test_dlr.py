"""MessageBird's webhooks on a real ``tenant-worker api`` process: status reports and STOP replies,
signed in the tests as MessageBird signs them and checked by the SDK's ``RequestValidator``.

The server's ``PUBLIC_BASE_URL`` is not its own address: as behind a reverse proxy, requests reach
127.0.0.1 while signatures name the public URL, which is the one the server must check.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from tenant_worker.adapters.orm import CustomerRow, ReminderRow
from tenant_worker.constants import DEFAULT_SHARD_COUNT, DLR_PATH, INBOUND_PATH
from tenant_worker.domain.model import TenantSpec
from tenant_worker.domain.records import Tenant
from tenant_worker.domain.storage import UnitOfWorkFactory
from tenant_worker.services.tenants import create_tenant
from tenant_worker_dev.emulators.messagebird_signing import SIGNATURE_HEADER, sign_request
from tenant_worker_dev.emulators.sentry import SentryRecorder
from tests.conftest import ALWAYS_OPEN, add_customers, customer, new_phone, unique_slug, wait_until
from tests.integration.api import dlr_server
from tests.integration.api.conftest import ApiServer, problem
from tests.integration.api.dlr_server import PUBLIC, SIGNING_KEY

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)

dlr_api = dlr_server.dlr_api  # the fixture, in this module's scope


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def sent_reminders(sessions: sessionmaker[Session], tenant: Tenant, count: int = 1) -> list[int]:
    """``count`` reminders of the tenant recorded as sent, as MessageBird message ``mb-<id>``."""
    due = today() + dt.timedelta(days=3)
    add_customers(sessions, tenant, [customer(f"c{i}", due) for i in range(count)])
    with sessions.begin() as session:
        ids = list(
            session.scalars(
                text("""
                    INSERT INTO reminders (tenant_id, subscription_id, expires_on, window_days, local_date, status,
                                           provider_message_id, sent_at)
                    SELECT tenant_id, id, expires_on, 3, CURRENT_DATE, 'sent', NULL, now() FROM subscriptions
                     WHERE tenant_id = :tenant_id RETURNING id
                """),
                {"tenant_id": tenant.id},
            )
        )
        session.execute(
            text("UPDATE reminders SET provider_message_id = 'mb-' || id WHERE id = ANY(:ids)"), {"ids": ids}
        )
    return sorted(ids)


def report_query(rid: int, status: str, seconds: int = 0, message_id: str | None = None, **extra: str) -> str:
    fields = {"id": message_id or f"mb-{rid}", "reference": str(rid), "recipient": "31612345678", "status": status}
    fields |= extra
    fields["statusDatetime"] = (T0 + dt.timedelta(seconds=seconds)).isoformat()
    return urlencode(fields)


def deliver(server: ApiServer, query: str, signature: str | None = "sign", path: str = DLR_PATH) -> httpx.Response:
    """GET the report as MessageBird would, signed on the public URL unless ``signature`` is given."""
    headers = {}
    if signature == "sign":
        signature = sign_request(SIGNING_KEY, f"{PUBLIC}{path}?{query}")
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    return httpx.get(f"{server.url}{path}?{query}", headers=headers, timeout=10)


def delivery(
    sessions: sessionmaker[Session], rid: int
) -> tuple[str | None, dt.datetime | None, str | None, int | None]:
    with sessions() as session:
        row = session.get_one(ReminderRow, rid)
        return row.delivery_status, row.delivery_status_at, row.delivery_reason, row.delivery_error_code


def test_a_signed_report_is_recorded_on_its_reminder(dlr_api: ApiServer, sessions, make_tenant) -> None:
    (rid,) = sent_reminders(sessions, make_tenant())
    started = time.perf_counter()
    answer = deliver(dlr_api, report_query(rid, "delivered", 7))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"recorded": True}
    assert time.perf_counter() - started < 2  # generous: the benchmark measures; this only catches a hang
    assert delivery(sessions, rid) == ("delivered", T0 + dt.timedelta(seconds=7), None, None)


def test_status_reports_are_counted_by_status_for_prometheus(dlr_api: ApiServer, sessions, make_tenant) -> None:
    def delivered() -> float:
        for line in httpx.get(f"{dlr_api.url}/metrics", timeout=5).text.splitlines():
            if line.startswith('tenant_worker_status_reports_total{status="delivered"}'):
                return float(line.split()[-1])
        return 0.0

    before = delivered()
    (rid,) = sent_reminders(sessions, make_tenant())
    assert deliver(dlr_api, report_query(rid, "delivered", 7)).status_code == 200
    assert delivered() == before + 1


def _expired(query: str) -> str:
    return sign_request(SIGNING_KEY, f"{PUBLIC}{DLR_PATH}?{query}", issued_at=time.time() - 300)


@pytest.mark.parametrize(
    ("make_signature", "why"),
    [
        pytest.param(lambda q: None, "missing", id="missing"),
        pytest.param(lambda q: sign_request("not-" + SIGNING_KEY, f"{PUBLIC}{DLR_PATH}?{q}"), "invalid", id="forged"),
        pytest.param(_expired, "expired", id="expired"),
        pytest.param(
            lambda q: sign_request(SIGNING_KEY, f"http://127.0.0.1{DLR_PATH}?{q}"), "url_hash", id="inner-url"
        ),
        pytest.param(lambda q: "not.a.jwt", "invalid", id="garbage"),
    ],
)
def test_a_report_without_a_valid_signature_is_401_and_the_ledger_untouched(
    dlr_api: ApiServer, sessions, make_tenant, make_signature, why: str
) -> None:
    (rid,) = sent_reminders(sessions, make_tenant())
    query = report_query(rid, "delivery_failed", reason="x")
    body = problem(deliver(dlr_api, query, make_signature(query)), 401)
    assert why in body["detail"]
    assert delivery(sessions, rid) == (None, None, None, None)


def test_a_replayed_report_is_401(dlr_api: ApiServer, sessions, make_tenant) -> None:
    (rid,) = sent_reminders(sessions, make_tenant())
    query = report_query(rid, "buffered")
    signature = sign_request(SIGNING_KEY, f"{PUBLIC}{DLR_PATH}?{query}")
    assert deliver(dlr_api, query, signature).status_code == 200
    assert "replayed" in problem(deliver(dlr_api, query, signature), 401)["detail"]


def test_duplicates_and_late_lower_statuses_change_nothing(dlr_api: ApiServer, sessions, make_tenant) -> None:
    (rid,) = sent_reminders(sessions, make_tenant())
    assert deliver(dlr_api, report_query(rid, "delivered", 5)).json() == {"recorded": True}
    assert deliver(dlr_api, report_query(rid, "delivered", 5)).json() == {"recorded": False}
    assert deliver(dlr_api, report_query(rid, "buffered", 9)).json() == {"recorded": False}
    assert delivery(sessions, rid)[0] == "delivered"


def test_a_reference_with_another_messages_id_is_answered_but_touches_nothing(
    dlr_api: ApiServer, sessions, make_tenant
) -> None:
    (victim,) = sent_reminders(sessions, make_tenant())
    (own,) = sent_reminders(sessions, make_tenant())
    answer = deliver(dlr_api, report_query(victim, "delivery_failed", message_id=f"mb-{own}"))
    assert answer.json() == {"recorded": False}
    assert delivery(sessions, victim)[0] is None


def test_a_malformed_signed_report_is_422(dlr_api: ApiServer, sessions, make_tenant) -> None:
    (rid,) = sent_reminders(sessions, make_tenant())
    assert "status" in problem(deliver(dlr_api, report_query(rid, "teleported")), 422)["detail"]


def test_undelivered_sms_reach_sentry_grouped_per_tenant_and_reason(
    dlr_api: ApiServer, sessions, make_tenant, sentry_recorder: SentryRecorder
) -> None:
    first, second = make_tenant(), make_tenant()
    a, b = sent_reminders(sessions, first, 2)
    (c,) = sent_reminders(sessions, second)
    for rid, tenant_code in ((a, "1"), (b, "1"), (c, "1")):
        query = report_query(rid, "delivery_failed", statusReason="unknown subscriber", statusErrorCode=tenant_code)
        assert deliver(dlr_api, query).json() == {"recorded": True}

    def events(slug: str) -> list[dict]:
        return [e for e in sentry_recorder.events() if (e.get("tags") or {}).get("tenant") == slug]

    wait_until(lambda: events(first.slug) and events(second.slug), 15, "both tenants' Sentry events")
    (event,) = events(first.slug)  # the second failure of the same incident is counted, not sent
    assert event["fingerprint"] == ["reminders-ended", first.slug, "delivery_failed", "error_1"]
    assert event["tags"]["reminder_status"] == "delivery_failed" and event["tags"]["reason"] == "error_1"
    (other,) = events(second.slug)
    assert other["fingerprint"] == ["reminders-ended", second.slug, "delivery_failed", "error_1"]


def numeric_tenant(uow: UnitOfWorkFactory) -> Tenant:
    number = f"+3197{random.randrange(10**7, 10**8)}"
    spec = TenantSpec(
        unique_slug("stop"), "Acme Fiber", "Europe/Amsterdam", number, "en", (5, 3, 1), sending_window=ALWAYS_OPEN
    )
    with uow() as tx:
        return create_tenant(tx, spec, shard_count=DEFAULT_SHARD_COUNT)


def opted_out(sessions: sessionmaker[Session], tenant: Tenant, ref: str) -> tuple[bool, dt.datetime | None]:
    with sessions() as session:
        row = session.scalars(
            select(CustomerRow).where(CustomerRow.tenant_id == tenant.id, CustomerRow.external_ref == ref)
        ).one()
        return row.opted_out, row.opted_out_at


def test_a_stop_reply_posted_as_a_form_opts_the_customer_out(dlr_api: ApiServer, sessions, uow) -> None:
    tenant, phone = numeric_tenant(uow), new_phone()
    add_customers(sessions, tenant, [customer("c1", today() + dt.timedelta(days=30), phone)])
    body = urlencode({"originator": phone.lstrip("+"), "recipient": tenant.originator.lstrip("+"), "body": " Stop "})
    signature = sign_request(SIGNING_KEY, f"{PUBLIC}{INBOUND_PATH}", body.encode())
    answer = httpx.post(
        f"{dlr_api.url}{INBOUND_PATH}", content=body, timeout=10,
        headers={SIGNATURE_HEADER: signature, "Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"stop": True, "opted_out": 1}
    _, at = opted_out(sessions, tenant, "c1")
    assert at is not None  # opted out, and when


def test_a_reply_by_get_that_is_not_stop_changes_nothing(dlr_api: ApiServer, sessions, uow) -> None:
    tenant, phone = numeric_tenant(uow), new_phone()
    add_customers(sessions, tenant, [customer("c1", today() + dt.timedelta(days=30), phone)])
    query = urlencode({"originator": phone.lstrip("+"), "recipient": tenant.originator, "body": "when do I pay?"})
    assert deliver(dlr_api, query, path=INBOUND_PATH).json() == {"stop": False, "opted_out": 0}
    assert opted_out(sessions, tenant, "c1")[1] is None


def test_an_unsigned_stop_reply_is_401_and_opts_nobody_out(dlr_api: ApiServer, sessions, uow) -> None:
    tenant, phone = numeric_tenant(uow), new_phone()
    add_customers(sessions, tenant, [customer("c1", today() + dt.timedelta(days=30), phone)])
    query = urlencode({"originator": phone.lstrip("+"), "recipient": tenant.originator, "body": "STOP"})
    problem(deliver(dlr_api, query, None, path=INBOUND_PATH), 401)
    assert opted_out(sessions, tenant, "c1")[1] is None
