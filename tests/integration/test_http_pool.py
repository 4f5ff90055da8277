"""The keep-alive connection pool behind the MessageBird client, against small real servers on 127.0.0.1:
reuse, stale connections, timeouts, the bound on requests in flight, and HTTPS through a CONNECT proxy.
Every test runs on both pools: the shipped ``http_pool`` and the urllib3 one it is benchmarked against
(``scripts/bench_http_urllib3.py``), so the benchmark compares two clients that behave the same."""

from __future__ import annotations

import contextlib
import select
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import trustme

from scripts.bench_http_urllib3 import Urllib3Pool
from tenant_worker.adapters.http_pool import ConnectionPool, NoAnswerError, NotSentError
from tests.conftest import free_port

OK = b'HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"id": "1"}'


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@contextlib.contextmanager
def serve(handle: Callable[[socket.socket], None]) -> Iterator[tuple[int, list[int]]]:
    """A TCP server on a free port running ``handle(connection)`` per connection; yields the port and
    the list of connections it accepted (one entry per connection, so reuse can be counted)."""
    accepted: list[int] = []

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            accepted.append(1)
            with contextlib.suppress(OSError):
                handle(self.request)

    server = _Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], accepted
    finally:
        server.shutdown()
        server.server_close()


def read_request(connection: socket.socket | ssl.SSLSocket) -> bytes:
    """Read one request with a Content-Length body; b"" when the client hung up."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0
    )
    while len(body) < length:
        body += connection.recv(65536)
    return head


def keep_alive(connection: socket.socket) -> None:
    while read_request(connection):
        connection.sendall(OK)


Pool = ConnectionPool | Urllib3Pool


@pytest.fixture(params=[ConnectionPool, Urllib3Pool], ids=["http_pool", "urllib3"])
def pool_class(request: pytest.FixtureRequest) -> type[Pool]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def pool_for(pool_class: type[Pool]) -> Callable[..., Pool]:
    def build(port: int, **options: float) -> Pool:
        settings = {"size": 4, "connect_timeout": 1.0, "read_timeout": 1.0, **options}
        return pool_class(f"http://127.0.0.1:{port}", **settings)  # type: ignore[arg-type]

    return build


def post(pool: Pool) -> int:
    return pool.request("POST", "/messages", b"{}", {"Content-Type": "application/json"}).status


def test_sequential_requests_share_one_kept_alive_connection(pool_for):
    with serve(keep_alive) as (port, accepted):
        pool = pool_for(port)
        assert [post(pool) for _ in range(20)] == [201] * 20
        assert len(accepted) == 1
        pool.close()


def test_an_idle_connection_the_server_closed_is_replaced_not_used(pool_for):
    def answer_once(connection: socket.socket) -> None:
        read_request(connection)
        connection.sendall(OK)  # keep-alive promised, then the server closes it anyway

    with serve(answer_once) as (port, accepted):
        pool = pool_for(port)
        assert post(pool) == 201
        time.sleep(0.2)
        assert post(pool) == 201  # a stale connection would have made this NoAnswerError
        assert len(accepted) == 2


def test_an_answer_with_connection_close_is_not_reused(pool_for):
    def answer_and_close(connection: socket.socket) -> None:
        read_request(connection)
        connection.sendall(OK.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1))

    with serve(answer_and_close) as (port, accepted):
        pool = pool_for(port)
        assert post(pool) == 201 and post(pool) == 201
        assert len(accepted) == 2


def test_refused_connection_was_not_sent_and_silence_after_sending_is_no_answer(pool_for):
    with pytest.raises(NotSentError):
        post(pool_for(free_port()))
    with serve(lambda connection: (read_request(connection), time.sleep(2))) as (port, _):
        started = time.monotonic()
        with pytest.raises(NoAnswerError, match="read timeout"):
            post(pool_for(port, read_timeout=0.3))
        assert time.monotonic() - started < 1.5


def test_a_connection_cut_after_the_request_is_no_answer(pool_for):
    with (
        serve(lambda connection: (read_request(connection), connection.close())) as (port, _),
        pytest.raises(NoAnswerError, match="after sending"),
    ):
        post(pool_for(port))


def test_a_request_that_got_no_answer_is_not_sent_again(pool_for):
    requests: list[bytes] = []

    def cut(connection: socket.socket) -> None:
        requests.append(read_request(connection))
        connection.close()

    with serve(cut) as (port, accepted), pytest.raises(NoAnswerError):
        post(pool_for(port))
    assert len(requests) == 1 and len(accepted) == 1  # a retried POST could send an SMS twice


def test_a_tls_handshake_that_never_completes_was_not_sent(pool_class):
    with serve(lambda connection: time.sleep(2)) as (port, _):
        pool = pool_class(f"https://localhost:{port}", size=1, connect_timeout=0.3, read_timeout=5)
        started = time.monotonic()
        with pytest.raises(NotSentError):
            post(pool)
        assert time.monotonic() - started < 1.5


def test_no_more_requests_in_flight_than_the_pool_size(pool_for):
    in_flight, most = [0], [0]
    lock = threading.Lock()

    def slow(connection: socket.socket) -> None:
        while read_request(connection):
            with lock:
                in_flight[0] += 1
                most[0] = max(most[0], in_flight[0])
            time.sleep(0.05)
            with lock:
                in_flight[0] -= 1
            connection.sendall(OK)

    with serve(slow) as (port, accepted):
        pool = pool_for(port, size=3)
        with ThreadPoolExecutor(12) as threads:
            assert list(threads.map(lambda _: post(pool), range(24))) == [201] * 24
        assert most[0] == 3
        assert len(accepted) == 3


@pytest.fixture(scope="module")
def tls_server() -> Iterator[tuple[int, trustme.CA]]:
    """An HTTPS server for ``localhost`` with a certificate from a throwaway CA."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)

    def tls(connection: socket.socket) -> None:
        with context.wrap_socket(connection, server_side=True) as secure:
            keep_alive(secure)  # type: ignore[arg-type]

    with serve(tls) as (port, _):
        yield port, ca


def connect_proxy(seen: list[bytes]) -> Callable[[socket.socket], None]:
    """A CONNECT proxy that records the CONNECT line and then relays bytes both ways."""

    def relay(client: socket.socket) -> None:
        head = read_request(client)
        seen.append(head.split(b"\r\n")[0])
        host, port = head.split()[1].decode().rsplit(":", 1)
        with socket.create_connection(("127.0.0.1" if host == "localhost" else host, int(port))) as upstream:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            while True:
                readable, _, _ = select.select([client, upstream], [], [], 5)
                if not readable:
                    return
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    (upstream if source is client else client).sendall(data)

    return relay


def test_https_verifies_the_certificate_and_can_tunnel_through_a_proxy(pool_class, tls_server, tmp_path):
    port, ca = tls_server
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    direct = pool_class(f"https://localhost:{port}", size=2, connect_timeout=1, read_timeout=1, ca_bundle=str(bundle))
    assert post(direct) == 201
    seen: list[bytes] = []
    with serve(connect_proxy(seen)) as (proxy_port, _):
        proxied = pool_class(
            f"https://localhost:{port}", size=2, connect_timeout=1, read_timeout=1, ca_bundle=str(bundle),
            proxy=f"http://127.0.0.1:{proxy_port}",
        )  # fmt: skip
        assert post(proxied) == 201 and post(proxied) == 201
        assert seen == [f"CONNECT localhost:{port} HTTP/1.0".encode()]
        proxied.close()


def test_an_untrusted_certificate_is_refused_before_anything_is_sent(pool_class, tls_server):
    port, _ = tls_server
    pool = pool_class(f"https://localhost:{port}", size=1, connect_timeout=1, read_timeout=1)
    with pytest.raises(NotSentError):
        post(pool)
