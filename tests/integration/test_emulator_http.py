"""The emulators' own HTTP/1.1 server, seen from raw sockets and each HTTP client the project uses.

Clients that misbehave (pipelining, hanging up mid-body or mid-answer, chunked bodies) must get what a
real server would give them, and a stopped emulator must look down even to a connection kept alive.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import struct
import time
import urllib.request
from collections.abc import Iterator

import pytest
import requests

from tenant_worker_dev.emulators.messagebird import Fault, MessageBirdEmulator
from tenant_worker_dev.emulators.sentry import SentryRecorder

ACCESS_KEY = "test-access-key"


@pytest.fixture
def emulator() -> Iterator[MessageBirdEmulator]:
    with MessageBirdEmulator(access_key=ACCESS_KEY) as running:
        yield running


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def message_request(recipient: str, reference: str, *extra_headers: str) -> bytes:
    body = json.dumps({"originator": "TenantCo", "recipients": recipient, "body": "Hi", "reference": reference})
    head = ["POST /messages HTTP/1.1", "Host: emulator", f"Authorization: AccessKey {ACCESS_KEY}"]
    head += ["Content-Type: application/json", f"Content-Length: {len(body)}", *extra_headers]
    return ("\r\n".join(head) + "\r\n\r\n" + body).encode()


def read_answers(sock: socket.socket, count: int) -> list[tuple[int, dict[str, str], bytes]]:
    """Read ``count`` answers off one connection, framed by their Content-Length."""
    stream = sock.makefile("rb")
    answers = []
    for _ in range(count):
        status = int(stream.readline().split()[1])
        headers = {}
        while (line := stream.readline().decode("latin-1").strip()) != "":
            name, _, value = line.partition(":")
            headers[name.lower()] = value.strip()
        answers.append((status, headers, stream.read(int(headers["content-length"]))))
    return answers


def hears_nothing_more(sock: socket.socket) -> bool:
    """True when the server closed the connection (EOF or reset) instead of keeping it open."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_pipelined_requests_are_answered_in_order_even_when_the_first_is_slow(
    emulator: MessageBirdEmulator,
) -> None:
    emulator.add_faults("31600000001", [Fault.slow(0.3)])
    pipeline = b"".join(message_request(f"3160000000{n}", f"ref-{n}") for n in (1, 2, 3))

    with socket.create_connection(("127.0.0.1", port_of(emulator.url)), timeout=3) as sock:
        sock.sendall(pipeline)
        answers = read_answers(sock, 3)

    assert [status for status, _, _ in answers] == [201, 201, 201]
    assert [json.loads(body)["reference"] for _, _, body in answers] == ["ref-1", "ref-2", "ref-3"]
    assert [record.reference for record in emulator.accepted()] == ["ref-1", "ref-2", "ref-3"]


def test_a_client_that_hangs_up_mid_body_sends_nothing_and_breaks_nothing(
    emulator: MessageBirdEmulator, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    request = message_request("31600000001", "cut")
    with socket.create_connection(("127.0.0.1", port_of(emulator.url)), timeout=3) as sock:
        sock.sendall(request[:-5])

    with socket.create_connection(("127.0.0.1", port_of(emulator.url)), timeout=3) as sock:
        sock.sendall(message_request("31600000002", "whole"))
        [(status, _, _)] = read_answers(sock, 1)

    assert status == 201
    assert [record.reference for record in emulator.requests()] == ["whole"]
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert capfd.readouterr().err == ""


def test_clients_that_give_up_mid_answer_leave_no_traceback_and_the_sms_still_goes_out(
    emulator: MessageBirdEmulator, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    emulator.add_faults("31600000001", [Fault.slow(0.3)])
    emulator.add_faults("31600000002", [Fault.slow(0.3)])
    hanging_up = socket.create_connection(("127.0.0.1", port_of(emulator.url)), timeout=3)
    resetting = socket.create_connection(("127.0.0.1", port_of(emulator.url)), timeout=3)
    # SO_LINGER 0: close() sends a reset, as a client killed mid-request would.
    resetting.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    hanging_up.sendall(message_request("31600000001", "gave-up"))
    resetting.sendall(message_request("31600000002", "reset"))
    time.sleep(0.1)
    hanging_up.close()
    resetting.close()

    sent = emulator.wait_for_accepted(2, timeout=3)
    time.sleep(0.1)

    assert sorted(record.reference or "" for record in sent) == ["gave-up", "reset"]
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert capfd.readouterr().err == ""


def test_stopping_cuts_idle_kept_alive_connections_and_frees_the_port() -> None:
    emulator = MessageBirdEmulator(access_key=ACCESS_KEY).start()
    port = port_of(emulator.url)
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        sock.sendall(message_request("31600000001", "before-stop"))
        [(status, headers, _)] = read_answers(sock, 1)
        assert (status, headers.get("connection")) == (201, None)

        emulator.stop()

        assert hears_nothing_more(sock)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=3).close()
    with MessageBirdEmulator(port=port, access_key=ACCESS_KEY) as again:
        assert requests.get(f"{again.url}/_emulator/stats", timeout=2).json()["requests"] == 0


@pytest.mark.parametrize(
    ("version", "extra"), [("HTTP/1.1", ["Connection: close"]), ("HTTP/1.0", []), ("HTTP/1.1", ["Connection: Close"])]
)
def test_the_connection_is_closed_when_the_client_asks_or_speaks_http_1_0(
    emulator: MessageBirdEmulator, version: str, extra: list[str]
) -> None:
    request = message_request("31600000001", "once", *extra).replace(b"HTTP/1.1", version.encode(), 1)
    with socket.create_connection(("127.0.0.1", port_of(emulator.url)), timeout=3) as sock:
        sock.sendall(request)
        [(status, headers, _)] = read_answers(sock, 1)

        assert (status, headers["connection"]) == (201, "close")
        assert hears_nothing_more(sock)


def test_chunked_bodies_are_refused_with_411_and_the_connection_closed(emulator: MessageBirdEmulator) -> None:
    head = "POST /messages HTTP/1.1\r\nHost: emulator\r\nTransfer-Encoding: chunked\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port_of(emulator.url)), timeout=3) as sock:
        sock.sendall(head.encode() + b"5\r\nhello\r\n0\r\n\r\n")
        [(status, _, body)] = read_answers(sock, 1)

        assert (status, json.loads(body)["errors"][0]["code"]) == (411, 9)
        assert hears_nothing_more(sock)
    assert emulator.requests() == []


def test_the_sentry_recorder_refuses_chunked_bodies_too() -> None:
    with SentryRecorder() as recorder:
        chunks = iter([b'{"event_id": "', b"c" * 32, b'"}'])
        response = requests.post(f"{recorder.url}/api/1/store/", data=chunks, timeout=2)

        assert response.status_code == 411
        assert recorder.raw() == []


def test_urllib_http_client_and_requests_all_get_their_answers(emulator: MessageBirdEmulator) -> None:
    body = json.dumps({"originator": "TenantCo", "recipients": "31600000001", "body": "Hi"}).encode()
    headers = {"Authorization": f"AccessKey {ACCESS_KEY}", "Content-Type": "application/json"}
    statuses: list[tuple[int, int]] = []

    request = urllib.request.Request(f"{emulator.url}/messages", data=body, headers=headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=2) as answer:  # noqa: S310 (our own emulator)
        statuses.append((answer.status, json.load(answer)["recipients"]["totalCount"]))
    connection = http.client.HTTPConnection("127.0.0.1", port_of(emulator.url), timeout=2)
    connection.request("POST", "/messages", body=body, headers=headers)
    answer = connection.getresponse()
    statuses.append((answer.status, json.loads(answer.read())["recipients"]["totalCount"]))
    connection.close()
    answer = requests.post(f"{emulator.url}/messages", data=body, headers=headers, timeout=2)
    statuses.append((answer.status_code, answer.json()["recipients"]["totalCount"]))

    assert statuses == [(201, 1)] * 3
    assert len(emulator.accepted()) == 3


def test_unknown_paths_get_messagebirds_404_json(emulator: MessageBirdEmulator) -> None:
    for method in ("GET", "POST", "DELETE"):
        response = requests.request(method, f"{emulator.url}/no/such/thing", timeout=2)

        assert (response.status_code, response.json()["errors"][0]["code"]) == (404, 20)
