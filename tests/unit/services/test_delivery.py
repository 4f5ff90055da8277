"""Status reports and replies on the fakes, with signatures made as MessageBird makes them and checked
by the SDK's own validator (``adapters.messagebird_webhooks`` is pure: no I/O)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, wait

import pytest

from tenant_worker.adapters.messagebird_webhooks import MessageBirdSignatures
from tenant_worker.domain.delivery import DeliveryReport, InboundSms
from tenant_worker.domain.ports import SYSTEM_CLOCK, SignedToken, WebhookRejected, WebhookUnavailable
from tenant_worker.domain.records import Tenant
from tenant_worker.domain.storage import StorageUnavailable
from tenant_worker.services.delivery import authenticate, forgotten_on_failure
from tenant_worker.services.replies import handle_reply
from tenant_worker.services.report_batcher import ReportBatcher
from tenant_worker_dev.emulators.messagebird_signing import sign_request
from tests.fakes import FakeStorage, RecordingAlerts
from tests.fakes.replay import MemoryReplayGuard
from tests.unit.services.conftest import NewTenant, due_customers

KEY = "signing-key-for-tests-0123456789abcdef"
BASE = "https://reminders.example.com"
PATH = "/v1/dlr/messagebird"
QUERY = "id=mb-1&reference=1&status=delivered&statusDatetime=2026-03-02T09%3A00%3A00%2B00%3A00"
verifier = MessageBirdSignatures(KEY, BASE)


def check(signature: str | None, query: str = QUERY, body: bytes = b"", guard: MemoryReplayGuard | None = None) -> str:
    token = authenticate(verifier, guard or MemoryReplayGuard(), SYSTEM_CLOCK, signature, PATH, query, body)
    return token.token_id


def test_a_request_signed_as_messagebird_signs_it_is_accepted() -> None:
    assert check(sign_request(KEY, f"{BASE}{PATH}?{QUERY}", token_id="t-1")) == "t-1"


# Signed when the test runs, not when it is collected: a token is valid for minutes, and the whole suite
# takes longer than that to reach this module.
@pytest.mark.parametrize(
    ("signed", "why"),
    [
        pytest.param(lambda: None, "missing", id="missing"),
        pytest.param(
            lambda: sign_request("another-signing-key-0123456789abcdef", f"{BASE}{PATH}?{QUERY}"),
            "Signature verification failed",
            id="key",
        ),
        pytest.param(
            lambda: sign_request(KEY, f"{BASE}{PATH}?{QUERY}", issued_at=time.time() - 120), "expired", id="expired"
        ),
        pytest.param(lambda: sign_request(KEY, f"http://10.0.0.7:8000{PATH}?{QUERY}"), "url_hash", id="proxy-url"),
        pytest.param(
            lambda: sign_request(KEY, f"{BASE}{PATH}?{QUERY}".replace("delivered", "buffered")), "url_hash", id="query"
        ),
        pytest.param(lambda: sign_request(KEY, f"{BASE}{PATH}?{QUERY}", issuer="Mallory"), "issuer", id="issuer"),
    ],
)
def test_a_request_not_signed_for_this_url_and_key_is_rejected(signed: Callable[[], str | None], why: str) -> None:
    with pytest.raises(WebhookRejected, match=why):
        check(signed())


def test_a_body_must_match_its_payload_hash() -> None:
    url = f"{BASE}/v1/inbound/messagebird"
    signature = sign_request(KEY, url, b'{"body": "STOP"}')
    assert authenticate(
        verifier, MemoryReplayGuard(), SYSTEM_CLOCK, signature, "/v1/inbound/messagebird", "", b'{"body": "STOP"}'
    )
    with pytest.raises(WebhookRejected, match="payload_hash"):
        authenticate(
            verifier, MemoryReplayGuard(), SYSTEM_CLOCK, signature, "/v1/inbound/messagebird", "", b'{"body": "GO"}'
        )


def test_a_replayed_signature_is_rejected_and_a_forgotten_one_accepted_again() -> None:
    guard = MemoryReplayGuard()
    signature = sign_request(KEY, f"{BASE}{PATH}?{QUERY}")
    token_id = check(signature, guard=guard)
    with pytest.raises(WebhookRejected, match="replayed"):
        check(signature, guard=guard)
    guard.forget([SignedToken(token_id, dt.datetime.now(dt.UTC))])
    assert check(signature, guard=guard) == token_id


def test_webhooks_without_a_signing_key_are_unavailable_not_open() -> None:
    with pytest.raises(WebhookUnavailable):
        authenticate(MessageBirdSignatures("", BASE), MemoryReplayGuard(), SYSTEM_CLOCK, "x", PATH, QUERY, b"")


T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def sent_reminders(storage: FakeStorage, tenant: Tenant, count: int) -> list[int]:
    storage.add_customers(tenant, due_customers(count))
    with storage() as tx:
        ids = sorted(i for i, _ in tx.ledger(tenant.id).claim_due_reminders(T0.date(), tenant.windows))
    for rid in ids:
        storage.update_reminders([rid], status="sent", provider_message_id=f"mb-{rid}", sent_at=T0)
    return ids


def report(rid: int, status: str, seconds: int = 0, **extra: object) -> DeliveryReport:
    return DeliveryReport(f"mb-{rid}", rid, status, T0 + dt.timedelta(seconds=seconds), **extra)  # type: ignore[arg-type]


def fresh_token() -> SignedToken:
    return SignedToken(uuid.uuid4().hex, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1))


def record_batch(
    storage: FakeStorage,
    alerts: RecordingAlerts,
    reports: list[DeliveryReport | None],
    guard: MemoryReplayGuard | None = None,
    tokens: list[SignedToken] | None = None,
) -> list[Future[bool]]:
    """One batch through the batcher, as its thread would take it; each request's future."""
    batcher = ReportBatcher(storage, guard or MemoryReplayGuard(), alerts, SYSTEM_CLOCK)
    tokens = tokens or [fresh_token() for _ in reports]
    futures = [batcher.submit(token, item) for token, item in zip(tokens, reports, strict=True)]
    wait(futures, timeout=5)
    return futures


def recorded(futures: list[Future[bool]]) -> int:
    return sum(1 for future in futures if future.result())


def test_undelivered_reports_alert_once_per_tenant_status_and_reason(
    storage: FakeStorage, new_tenant: NewTenant, alerts: RecordingAlerts
) -> None:
    first, second = new_tenant(), new_tenant()
    a, b, c = sent_reminders(storage, first, 3)
    (d,) = sent_reminders(storage, second, 1)
    batch = [
        report(a, "delivery_failed", reason="unknown subscriber", error_code=1),
        report(b, "delivery_failed", reason="unknown subscriber", error_code=1),
        report(c, "expired", reason="expired"),
        report(d, "delivered"),
    ]
    assert recorded(record_batch(storage, alerts, batch)) == 4
    assert sorted((slug, status, reason, ids) for slug, status, reason, ids, _ in alerts.ended) == [
        (first.slug, "delivery_failed", "error_1", [a, b]),
        (first.slug, "expired", "expired", [c]),
    ]
    assert recorded(record_batch(storage, alerts, batch)) == 0  # duplicates: nothing recorded, nothing alerted
    assert len(alerts.ended) == 2


def test_a_batch_refuses_replays_and_records_the_rest(storage: FakeStorage, new_tenant: NewTenant) -> None:
    a, b = sent_reminders(storage, new_tenant(), 2)
    guard, used, new = MemoryReplayGuard(), fresh_token(), fresh_token()
    guard.first_use([used], dt.datetime.now(dt.UTC))
    replayed, first, again = record_batch(
        storage, RecordingAlerts(), [report(a, "delivered"), report(b, "delivered"), report(b, "buffered")],
        guard, [used, new, new],
    )  # fmt: skip
    assert isinstance(replayed.exception(), WebhookRejected) and isinstance(again.exception(), WebhookRejected)
    assert first.result() is True
    assert [r.delivery_status for r in storage.reminders()] == [None, "delivered"]


def test_a_report_that_is_not_ours_is_answered_without_recording(storage: FakeStorage) -> None:
    (future,) = record_batch(storage, RecordingAlerts(), [None])
    assert future.result() is False


def test_tokens_are_forgotten_when_recording_fails(storage: FakeStorage, new_tenant: NewTenant) -> None:
    (rid,) = sent_reminders(storage, new_tenant(), 1)
    guard, token = MemoryReplayGuard(), fresh_token()
    storage.fail_next()
    (future,) = record_batch(storage, RecordingAlerts(), [report(rid, "delivered")], guard, [token])
    assert isinstance(future.exception(), StorageUnavailable)
    assert guard.first_use([token], dt.datetime.now(dt.UTC)) == [True]  # MessageBird's retry is accepted


def test_a_token_is_forgotten_when_handling_a_reply_fails() -> None:
    guard = MemoryReplayGuard()
    token = authenticate(verifier, guard, SYSTEM_CLOCK, sign_request(KEY, f"{BASE}{PATH}?{QUERY}"), PATH, QUERY, b"")
    with pytest.raises(RuntimeError), forgotten_on_failure(guard, token):
        raise RuntimeError("the database went away")
    assert guard.first_use([token], dt.datetime.now(dt.UTC)) == [True]


@pytest.mark.parametrize("text", ["STOP", " stop\n", "Stop!", "arrêt", "Uitschrijven", "STOPP"])
def test_a_stop_reply_opts_the_sender_out_of_the_tenant_texting_from_that_number(
    storage: FakeStorage, new_tenant: NewTenant, text: str
) -> None:
    tenant = new_tenant(originator="+3197010203")
    elsewhere = new_tenant()  # same customer, texted from an alphanumeric sender: not this reply's
    records = due_customers(1)
    storage.add_customers(tenant, records)
    storage.add_customers(elsewhere, records)
    with storage() as tx:
        tx.ledger(tenant.id).claim_due_reminders(T0.date(), tenant.windows)
    phone = records[0].phone
    result = handle_reply(
        storage, InboundSms(phone.lstrip("+"), "3197010203", text), ["STOP", "STOPP", "ARRET", "UITSCHRIJVEN"]
    )
    assert result.stop and [r.customer for r in result.opted_out] == [records[0].external_ref]
    assert result.opted_out[0].cancelled == 1
    assert [r.skip_reason for r in storage.reminders(tenant)] == ["opted_out"]
    with storage() as tx:
        mine = tx.catalog.find_customer(tenant.id, records[0].external_ref)
        theirs = tx.catalog.find_customer(elsewhere.id, records[0].external_ref)
    assert mine is not None and mine.opted_out_at is not None
    assert theirs is not None and theirs.opted_out_at is None


@pytest.mark.parametrize("text", ["don't stop", "STOP IT", "", "yes"])
def test_other_replies_change_nothing(storage: FakeStorage, new_tenant: NewTenant, text: str) -> None:
    tenant = new_tenant(originator="+3197010203")
    records = due_customers(1)
    storage.add_customers(tenant, records)
    result = handle_reply(storage, InboundSms(records[0].phone, "3197010203", text), ["STOP"])
    assert not result.stop and result.opted_out == []
    with storage() as tx:
        found = tx.catalog.find_customer(tenant.id, records[0].external_ref)
    assert found is not None and found.opted_out_at is None


def test_a_second_stop_changes_nothing(storage: FakeStorage, new_tenant: NewTenant) -> None:
    tenant = new_tenant(originator="+3197010203")
    records = due_customers(1)
    storage.add_customers(tenant, records)
    stop = InboundSms(records[0].phone, "+3197010203", "STOP")
    assert handle_reply(storage, stop, ["STOP"]).opted_out[0].changed
    again = handle_reply(storage, dataclasses.replace(stop), ["STOP"])
    assert not again.opted_out[0].changed
