"""The MessageBird and Sentry stand-ins behave like the real services do for their official SDKs.

Every other integration test trusts these emulators, so they are checked against the real client
libraries (``messagebird`` 2.x and ``sentry-sdk`` 2.x), not against hand-written requests alone.
"""

from __future__ import annotations

import gzip
import http.client
import importlib.util
import json
import math
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import messagebird
import pytest
import requests
from messagebird.client import ErrorException
from messagebird.http_client import HttpClient
from messagebird.message import Message

from tenant_worker_dev.emulators.messagebird import Fault, MessageBirdEmulator
from tenant_worker_dev.emulators.sentry import SentryRecorder

ACCESS_KEY = "test-access-key"
RECIPIENT = "+31612345678"


@pytest.fixture
def emulator() -> Iterator[MessageBirdEmulator]:
    with MessageBirdEmulator(access_key=ACCESS_KEY) as running:
        yield running


@pytest.fixture
def recorder() -> Iterator[SentryRecorder]:
    with SentryRecorder() as running:
        yield running


def sdk_client(emulator: MessageBirdEmulator, access_key: str = ACCESS_KEY) -> messagebird.Client:
    """The official client, pointed at the emulator instead of its hard-coded endpoint."""
    return messagebird.Client(access_key, http_client=HttpClient(emulator.url, access_key, "tests"))


def post_message(url: str, recipient: str = RECIPIENT, timeout: float = 2.0, **extra: Any) -> requests.Response:
    payload = {"originator": "TenantCo", "recipients": recipient, "body": "Invoice 42 is due", **extra}
    headers = {"Authorization": f"AccessKey {ACCESS_KEY}"}
    return requests.post(f"{url}/messages", json=payload, headers=headers, timeout=timeout)


def test_emulator_accepts_a_message_sent_with_the_official_sdk(emulator: MessageBirdEmulator) -> None:
    message = sdk_client(emulator).message_create(
        "TenantCo", [RECIPIENT], "Invoice 42 is due", {"reference": "reminder-7"}
    )

    [recorded] = emulator.accepted()
    assert (recorded.originator, recorded.recipients, recorded.body, recorded.reference) == (
        "TenantCo",
        ["31612345678"],
        "Invoice 42 is due",
        "reminder-7",
    )
    assert message.id == recorded.message_id
    assert message.reference == "reminder-7"
    assert message.recipients["items"][0].recipient == 31612345678
    assert message.createdDatetime is not None


def test_emulator_answer_carries_every_field_of_a_messagebird_message(emulator: MessageBirdEmulator) -> None:
    response = post_message(emulator.url, recipient="31612345678,31687654321", datacoding="unicode")

    assert response.status_code == 201
    document = response.json()
    message = Message().load(dict(document))
    assert (message.direction, message.type, message.datacoding, message.gateway) == (
        "mt",
        "sms",
        "unicode",
        10,
    )
    assert document["recipients"]["totalCount"] == 2
    assert [item.status for item in message.recipients["items"]] == ["sent", "sent"]


def test_emulator_rejects_a_wrong_access_key_like_messagebird(emulator: MessageBirdEmulator) -> None:
    with pytest.raises(ErrorException) as raised:
        sdk_client(emulator, access_key="wrong-key").message_create("TenantCo", [RECIPIENT], "Hi")

    assert [(e.code, e.parameter) for e in raised.value.errors] == [(2, "access_key")]
    assert [r.status for r in emulator.requests()] == [401]
    assert emulator.accepted() == []


@pytest.mark.parametrize("missing", ["originator", "recipients", "body"])
def test_emulator_reports_a_missing_field_as_a_validation_error(emulator: MessageBirdEmulator, missing: str) -> None:
    payload = {"originator": "TenantCo", "recipients": RECIPIENT, "body": "Hi"}
    del payload[missing]

    response = requests.post(
        f"{emulator.url}/messages",
        json=payload,
        headers={"Authorization": f"AccessKey {ACCESS_KEY}"},
        timeout=2,
    )

    [error] = response.json()["errors"]
    assert (response.status_code, error["code"], error["parameter"]) == (422, 9, missing)
    assert emulator.accepted() == []


def test_faults_are_consumed_in_order_then_the_recipient_is_served_normally(
    emulator: MessageBirdEmulator,
) -> None:
    emulator.add_faults(RECIPIENT, [Fault.status(500), 503, Fault.status(429), 422])

    statuses = [post_message(emulator.url, recipient="31612345678").status_code for _ in range(6)]

    assert statuses == [500, 503, 429, 422, 201, 201]
    assert post_message(emulator.url, recipient="+31687654321").status_code == 201
    assert len(emulator.accepted()) == 3


def test_a_fault_reaches_the_sdk_as_the_error_messagebird_would_raise(emulator: MessageBirdEmulator) -> None:
    emulator.add_faults(RECIPIENT, [Fault.status(422), Fault.status(502)])
    client = sdk_client(emulator)

    with pytest.raises(ErrorException):
        client.message_create("TenantCo", [RECIPIENT], "Hi")
    with pytest.raises(requests.HTTPError):
        client.message_create("TenantCo", [RECIPIENT], "Hi")


def test_a_slow_fault_still_sends_the_message_after_the_client_gave_up(emulator: MessageBirdEmulator) -> None:
    emulator.add_faults(RECIPIENT, [Fault.slow(0.6)])

    with pytest.raises(requests.Timeout):
        post_message(emulator.url, timeout=0.2, reference="reminder-9")

    [sent] = emulator.wait_for_accepted(1, timeout=2.0)
    assert sent.reference == "reminder-9"


def test_wait_for_accepted_names_what_it_was_waiting_for(emulator: MessageBirdEmulator) -> None:
    with pytest.raises(TimeoutError, match="expected at least 1 accepted"):
        emulator.wait_for_accepted(1, timeout=0.1)


def test_concurrent_requests_overlap_instead_of_queueing() -> None:
    with MessageBirdEmulator(access_key=ACCESS_KEY, latency=0.2) as emulator:
        with ThreadPoolExecutor(max_workers=20) as pool:
            recipients = [f"316{i:08d}" for i in range(20)]
            responses = list(pool.map(lambda number: post_message(emulator.url, number), recipients))

        assert [r.status_code for r in responses] == [201] * 20
        assert emulator.max_in_flight >= 10


def test_requests_beyond_the_rate_limit_get_429_and_are_not_sent() -> None:
    with MessageBirdEmulator(access_key=ACCESS_KEY, rate_limit_per_second=5) as emulator:
        started = time.monotonic()
        statuses = [post_message(emulator.url).status_code for _ in range(15)]
        refilled = math.ceil((time.monotonic() - started) * 5)

        assert statuses[:5] == [201] * 5
        assert 429 in statuses
        assert len(emulator.accepted()) == statuses.count(201) <= 5 + refilled


def test_one_connection_carries_many_messages(emulator: MessageBirdEmulator) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", int(emulator.url.rsplit(":", 1)[1]), timeout=2)
    body = json.dumps({"originator": "TenantCo", "recipients": RECIPIENT, "body": "Hi"})
    headers = {"Authorization": f"AccessKey {ACCESS_KEY}", "Content-Type": "application/json"}
    sockets = []
    for _ in range(3):
        connection.request("POST", "/messages", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        assert (response.status, response.will_close) == (201, False)
        sockets.append(connection.sock)
    connection.close()

    assert len(set(map(id, sockets))) == 1
    assert len(emulator.accepted()) == 3


def test_stopping_the_emulator_cuts_kept_alive_connections() -> None:
    emulator = MessageBirdEmulator(access_key=ACCESS_KEY).start()
    with requests.Session() as session:
        headers = {"Authorization": f"AccessKey {ACCESS_KEY}"}
        payload = {"originator": "TenantCo", "recipients": RECIPIENT, "body": "Hi"}
        url = f"{emulator.url}/messages"
        assert session.post(url, json=payload, headers=headers, timeout=2).status_code == 201
        emulator.stop()

        with pytest.raises(requests.ConnectionError):
            session.post(url, json=payload, headers=headers, timeout=2)


def test_admin_endpoints_let_another_process_read_and_reset_the_emulator(
    emulator: MessageBirdEmulator,
) -> None:
    post_message(emulator.url, reference="reminder-1")
    post_message(emulator.url, recipient="")

    stats = requests.get(f"{emulator.url}/_emulator/stats", timeout=2).json()
    accepted = requests.get(f"{emulator.url}/_emulator/accepted", timeout=2).json()
    assert stats == {"requests": 2, "accepted": 1, "max_in_flight": 1}
    assert [(a["reference"], a["recipients"]) for a in accepted] == [("reminder-1", ["31612345678"])]

    assert requests.post(f"{emulator.url}/_emulator/reset", timeout=2).status_code == 200
    assert emulator.requests() == []


def test_command_line_emulator_prints_its_url_and_serves_messages() -> None:
    command = [sys.executable, "-m", "tenant_worker_dev.emulators.messagebird", "--port", "0"]
    command += ["--access-key", ACCESS_KEY, "--latency", "0.01", "--rate-limit", "100"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline().strip()
            assert line.startswith("MessageBird emulator listening on http://127.0.0.1:")
            url = line.rsplit(" ", 1)[1]

            assert post_message(url).status_code == 201
            assert requests.get(f"{url}/_emulator/stats", timeout=2).json()["accepted"] == 1
        finally:
            process.terminate()
        assert process.wait(timeout=5) == 0


SENTRY_SCRIPT = """
import sys, sentry_sdk
sentry_sdk.init(dsn=sys.argv[1])
sentry_sdk.capture_message("hello")
sentry_sdk.flush(timeout=5)
"""


def test_sentry_recorder_receives_exactly_the_event_the_sdk_captured(recorder: SentryRecorder) -> None:
    # A subprocess, so sentry_sdk.init's global state cannot leak into other tests.
    subprocess.run([sys.executable, "-c", SENTRY_SCRIPT, recorder.dsn], check=True, timeout=20)

    [event] = recorder.wait_for_events(1, timeout=2)
    assert event["message"] == "hello"
    assert any(b'"hello"' in body for body in recorder.raw())
    assert len(recorder.events()) == 1


def envelope_bytes(message: str, *, with_length: bool) -> bytes:
    payload = json.dumps({"event_id": "a" * 32, "message": message}).encode()
    item_header: dict[str, Any] = {"type": "event"}
    if with_length:
        item_header["length"] = len(payload)
    return b"\n".join([b'{"event_id":"' + b"a" * 32 + b'"}', json.dumps(item_header).encode(), payload, b""])


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("", lambda data: data)],
)
@pytest.mark.parametrize("with_length", [True, False])
def test_sentry_recorder_decodes_compressed_envelopes(
    recorder: SentryRecorder, encoding: str, compress: Any, with_length: bool
) -> None:
    response = requests.post(
        f"{recorder.url}/api/1/envelope/",
        data=compress(envelope_bytes("card declined", with_length=with_length)),
        headers={"Content-Encoding": encoding} if encoding else {},
        timeout=2,
    )

    assert (response.status_code, response.json()) == (200, {})
    assert [event["message"] for event in recorder.events()] == ["card declined"]
    assert recorder.raw() == [envelope_bytes("card declined", with_length=with_length)]


def test_sentry_recorder_records_events_posted_to_the_legacy_store_endpoint(recorder: SentryRecorder) -> None:
    event = {"event_id": "b" * 32, "message": "legacy"}

    response = requests.post(f"{recorder.url}/api/1/store/", json=event, timeout=2)

    assert response.status_code == 200
    assert recorder.events() == [event]


def test_sentry_recorder_handles_brotli_only_when_it_can_decode_it(recorder: SentryRecorder) -> None:
    if importlib.util.find_spec("brotli") is None:
        headers = {"Content-Encoding": "br"}
        response = requests.post(f"{recorder.url}/api/1/envelope/", data=b"\x00", headers=headers, timeout=2)
        assert response.status_code == 415
        assert recorder.raw() == []
    else:
        brotli: Any = __import__("brotli")
        body = brotli.compress(envelope_bytes("hello", with_length=True))
        headers = {"Content-Encoding": "br"}
        response = requests.post(f"{recorder.url}/api/1/envelope/", data=body, headers=headers, timeout=2)
        assert response.status_code == 200
        assert [event["message"] for event in recorder.events()] == ["hello"]
