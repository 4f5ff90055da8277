"""The MessageBird client's connection pool on urllib3, kept to benchmark the shipped one against:
the same interface and outcomes as :mod:`tenant_worker.adapters.http_pool` (its tests run on both),
swapped in by ``bench_worker.py urllib3`` and compared by ``bench_dispatch.py --http-client both``.
It costs the workers 15-30% more CPU per SMS; the figures are in ``http_pool``'s docstring. Run
alone, it compares the client CPU per send of both pools against the emulator::

    .venv/bin/python scripts/bench_http_urllib3.py --sends 3000 --threads 1 --rounds 7

urllib3's ``HTTPConnectionPool`` already keeps connections alive across threads, bounds them
(``maxsize`` with ``block=True``: a request waits for a free connection), separates connect and read
timeouts and drops an idle connection the server closed. What it does not say is whether a failed
request could have reached the server, and with other settings it may retry (an SMS sent twice). So
retries and redirects are off, and the connections wrap ``connect()``: any failure there (DNS,
refused, connect timeout, proxy CONNECT, TLS handshake or certificate) is ``NotSentError``; any
failure once connected is ``NoAnswerError``. urllib3's own exception types do not draw that line: a
TLS handshake that times out is a ``ReadTimeoutError`` and a reset during it a ``ProtocolError``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import certifi
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ClosedPoolError, EmptyPoolError, ProtocolError, ReadTimeoutError
from urllib3.util.retry import Retry

from tenant_worker.adapters.http_pool import Answer, NoAnswerError, NotSentError

# Never retry or follow redirects: a retried POST could send an SMS twice.
_NO_RETRIES = Retry(total=False, redirect=False)


class _NotConnectedError(Exception):
    """``connect()`` failed: nothing was sent on this connection. Deliberately not an OSError or
    urllib3 error, so urllib3 lets it through unwrapped (after discarding the connection)."""


class _HTTPConnection(HTTPConnection):
    def connect(self) -> None:
        try:
            super().connect()
        except Exception as exc:
            raise _NotConnectedError(type(exc).__name__) from exc


class _HTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        try:
            super().connect()
        except Exception as exc:
            raise _NotConnectedError(type(exc).__name__) from exc


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class Urllib3Pool:
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
        url = urllib3.util.parse_url(origin)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"endpoint must be an http(s) URL, got {origin!r}")
        self.read_timeout = read_timeout
        options: dict[str, Any] = {
            "timeout": urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            "maxsize": size,
            "block": True,
            "retries": _NO_RETRIES,
        }
        if url.scheme == "https":
            options |= {"cert_reqs": "CERT_REQUIRED", "ca_certs": ca_bundle or certifi.where()}
        if proxy and url.scheme == "https":
            manager = urllib3.ProxyManager(proxy, num_pools=1, **options)
            manager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
            self._pool = manager.connection_from_host(url.host, url.port, scheme="https")
        else:
            pool_class = _HTTPSPool if url.scheme == "https" else _HTTPPool
            self._pool = pool_class(url.host, url.port, **options)

    def request(self, method: str, target: str, body: bytes | None, headers: dict[str, str]) -> Answer:
        """Send one request on an idle (or new) connection and read the whole answer."""
        try:
            response = self._pool.urlopen(
                method, target, body=body, headers=headers, retries=_NO_RETRIES, redirect=False, assert_same_host=False
            )
        except _NotConnectedError as exc:
            raise NotSentError(f"cannot connect: {exc}") from None
        except (EmptyPoolError, ClosedPoolError) as exc:
            raise NotSentError(f"no connection: {type(exc).__name__}") from None
        except ReadTimeoutError:
            raise NoAnswerError(f"no answer within {self.read_timeout:g}s (read timeout)") from None
        except ProtocolError as exc:
            cause = exc.args[-1] if len(exc.args) > 1 else exc
            raise NoAnswerError(f"connection lost after sending: {type(cause).__name__}") from None
        except Exception as exc:
            raise NoAnswerError(f"connection lost after sending: {type(exc).__name__}") from None
        return Answer(response.status, response.data)

    def close(self) -> None:
        """Close the idle connections; unlike ``http_pool``, a later request fails (as not sent)."""
        self._pool.close()


def compare_sends(sends: int, threads: int, rounds: int) -> None:
    """Client CPU per send and sends per second of each pool through the SDK and ``MessageBirdGateway``,
    against the MessageBird emulator at latency 0, in rounds that alternate the pools; prints medians."""
    from bench_common import emulator

    from tenant_worker.adapters import messagebird
    from tenant_worker.adapters.http_pool import ConnectionPool
    from tenant_worker.domain.model import OutboundSms, OutcomeKind

    results: dict[str, list[tuple[float, float]]] = {"pool": [], "urllib3": []}
    pools = {"pool": ConnectionPool, "urllib3": Urllib3Pool}
    with emulator(None, 0.0, 0, "bench-key") as url:
        for n in range(rounds):
            for name in ("pool", "urllib3") if n % 2 == 0 else ("urllib3", "pool"):
                messagebird.ConnectionPool = pools[name]  # type: ignore[attr-defined,assignment]
                gateway = messagebird.MessageBirdGateway("bench-key", url, pool_size=max(threads, 1))
                messages = [OutboundSms(str(i), "Bench", "+31612345678", "Hello") for i in range(sends)]
                gateway.send(messages[0])  # connect outside the measurement
                cpu, wall = time.process_time(), time.perf_counter()
                with ThreadPoolExecutor(threads) as executor:
                    outcomes = list(executor.map(gateway.send, messages))
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                gateway.close()
                assert all(outcome.kind == OutcomeKind.SENT for outcome in outcomes)
                results[name].append((cpu / sends * 1e6, sends / wall))
    for name, values in results.items():
        cpus, rates = [v[0] for v in values], [v[1] for v in values]
        print(f"{name:<8} median {statistics.median(cpus):5.0f} us CPU per send, {statistics.median(rates):6.0f} "
              f"sends/s; rounds: {', '.join(f'{c:.0f} us {r:.0f}/s' for c, r in values)}")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=compare_sends.__doc__)
    parser.add_argument("--sends", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    compare_sends(args.sends, args.threads, args.rounds)
