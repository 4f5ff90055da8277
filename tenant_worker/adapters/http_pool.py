"""A small thread-safe pool of keep-alive ``http.client`` connections to one origin.

Why not ``requests``: at hundreds of SMS a second its per-call machinery (merging session settings,
hooks, cookie jars, urllib3's pool manager and retry objects) cost more CPU than the rest of a send
together, and the worker is CPU bound when MessageBird answers fast. ``http.client`` does the same
HTTP/1.1 exchange with a fraction of the work. What this pool adds is what the SDK's client lacks and
a production sender needs: connections reused across threads (bounded by ``size``), separate connect
and read timeouts, a stale idle connection never used for a request (checked like urllib3 does), and
failures reported as *before* the request was sent (safe to retry) or *after* (the SMS may be out).
HTTPS verifies certificates against ``ca_bundle`` (certifi's by default) and may go through an
``https_proxy`` with a CONNECT tunnel.

Why not urllib3's ``HTTPConnectionPool`` either: measured 2026-12-04 against one used directly, with
retries off and the same outcomes (``scripts/bench_http_urllib3.py``; this module's tests run on
both), a send through the SDK costs ~40% more CPU (median 342 against 250 us on one thread, 474
against 333 us on 64; ``bench_http_urllib3.py --threads 1|64``), and the workers 15-30% more CPU per
SMS. ``scripts/bench_dispatch.py --baseline 0 --http-client both`` (rounds alternate the clients;
medians, urllib3/pool ratio of SMS/s and of worker CPU per SMS):

* ``--scenario uncapped --rounds 5`` (latency 0): 631 against 537 SMS/s, 0.85; CPU 1.18 (an earlier
  ``--rounds 3`` without the CPU figure: 663 against 619 SMS/s, 0.93);
* ``--scenario uncapped --latency 0.1 --rounds 5``: 573 against 507 SMS/s, 0.89; CPU 1.16;
* ``--scenario uncapped --small-tenants 0 --large 20000 --rounds 4`` (one tenant, full batches):
  1,719 against 1,160 SMS/s, 0.67; CPU 1.32.

Other sessions loaded the 2 cores meanwhile (load 5-12), so single runs varied by +-20% and the rates
are lower than the README's; the CPU per SMS varies less. That is past the ~10% allowed for adopting
urllib3, so this pool stays.
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi


class NotSentError(Exception):
    """No connection could be opened: the request certainly did not reach the server."""


class NoAnswerError(Exception):
    """The request may have reached the server but no complete answer came back."""


@dataclass(frozen=True)
class Answer:
    """One HTTP answer, read completely."""

    status: int
    body: bytes


class ConnectionPool:
    """Keep-alive connections to ``origin`` shared by threads; at most ``size`` requests at once."""

    def __init__(
        self,
        origin: str,
        *,
        size: int,
        connect_timeout: float,
        read_timeout: float,
        ca_bundle: str | None = None,
        proxy: str | None = None,
    ) -> None:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"endpoint must be an http(s) URL, got {origin!r}")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._proxy = urlsplit(proxy) if proxy and self.https else None
        self._context = _tls_context(ca_bundle) if self.https else None
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def request(self, method: str, target: str, body: bytes | None, headers: dict[str, str]) -> Answer:
        """Send one request on an idle (or new) connection and read the whole answer."""
        with self._slots:
            connection = self._checkout()
            try:
                connection.request(method, target, body=body, headers=headers)
                response = connection.getresponse()
                answer = Answer(response.status, response.read())
            except TimeoutError:
                connection.close()
                raise NoAnswerError(f"no answer within {self.read_timeout:g}s (read timeout)") from None
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                raise NoAnswerError(f"connection lost after sending: {type(exc).__name__}") from None
            if response.will_close:
                connection.close()
            else:
                with self._lock:
                    self._idle.append(connection)
            return answer

    def close(self) -> None:
        """Close the idle connections (ones in use close when their request ends)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _checkout(self) -> http.client.HTTPConnection:
        """The most recently used idle connection that is still open, or a newly opened one."""
        while True:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                return self._open()
            if not _dropped(connection):
                return connection
            connection.close()

    def _open(self) -> http.client.HTTPConnection:
        host, port = (self._proxy.hostname or "", self._proxy.port or 3128) if self._proxy else (self.host, self.port)
        connection: http.client.HTTPConnection
        if self._context is not None:
            connection = http.client.HTTPSConnection(host, port, timeout=self.connect_timeout, context=self._context)
        else:
            connection = http.client.HTTPConnection(host, port, timeout=self.connect_timeout)
        if self._proxy:
            connection.set_tunnel(self.host, self.port)
        try:
            connection.connect()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise NotSentError(f"cannot connect: {type(exc).__name__}") from None
        if connection.sock is not None:
            connection.sock.settimeout(self.read_timeout)
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """An idle keep-alive connection is readable only if the server closed it (or sent junk):
    either way it must not carry the next request."""
    sock = connection.sock
    if sock is None:
        return True
    poller = select.poll()  # not select(): it fails on descriptors above 1023
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def _tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    if ca_bundle is None:
        ca_bundle = certifi.where()
    return ssl.create_default_context(cafile=ca_bundle)
