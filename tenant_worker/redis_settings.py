"""Redis connection settings: the server URL, and Redis Sentinel with what Celery and RedBeat take from it.

With ``REDIS_SENTINELS`` (``host:port`` list) and ``REDIS_SENTINEL_MASTER`` set, every Redis client
asks the sentinels where the master is and asks again after a connection error, so it follows a
failover: the Celery broker (kombu's ``sentinel://`` transport), the result backend (Celery's
sentinel backend), RedBeat (``redis-sentinel://``) and the clients ``bootstrap`` builds
(``adapters/redis_client.py``). The master's password and database stay ``REDIS_PASSWORD`` (or its
``_FILE``) and ``REDIS_DB``; the sentinels' own password (``requirepass`` in sentinel.conf), if they
have one, is ``REDIS_SENTINEL_PASSWORD`` (or its ``_FILE``).

Plain values only (no redis or Celery import): errors are ``ValueError`` with a message that names the
setting and never a secret; ``config.load_settings`` turns them into ``ConfigurationError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

DEFAULT_SENTINEL_PORT = 26379
_NODE = re.compile(r"\[(?P<v6>[0-9A-Fa-f:.]+)\](?::(?P<v6port>\d+))?|(?P<host>[\w.-]+)(?::(?P<port>\d+))?")


@dataclass(frozen=True)
class SentinelSettings:
    """Where the sentinels are, which master they watch, and their own password (never shown)."""

    nodes: tuple[tuple[str, int], ...]
    master: str
    password: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if not self.nodes:
            raise ValueError("REDIS_SENTINELS names no sentinel")
        if not re.fullmatch(r"[\w.-]+", self.master):
            raise ValueError("REDIS_SENTINEL_MASTER must be the master's name in sentinel.conf (letters, digits, ._-)")

    def describe(self) -> str:
        """For messages: the master's name and the sentinels asked for it."""
        return f"Redis master {self.master!r} via sentinels {', '.join(_netloc(h, p) for h, p in self.nodes)}"

    def sentinel_kwargs(self, socket_options: dict[str, Any]) -> dict[str, Any]:
        """Connection arguments for the sentinels themselves: the socket timeouts (so a sentinel that
        vanished cannot hang a lookup) and their password, if any."""
        sockets = {name: value for name, value in socket_options.items() if name.startswith("socket_")}
        return {**sockets, **({"password": self.password} if self.password else {})}


def build_redis_url(
    host: str = "localhost", port: int = 6379, db: int = 0, password: str | None = None, *, tls: bool = False
) -> str:
    """Assemble a redis:// URL, percent-encoding the password so any character is safe."""
    scheme = "rediss" if tls else "redis"
    auth = f":{quote(password, safe='')}@" if password else ""
    return f"{scheme}://{auth}{host}:{port}/{db}"


def parse_sentinels(text: str) -> tuple[tuple[str, int], ...]:
    """``"h1:26379, h2, [::1]:26380"`` -> ``(("h1", 26379), ("h2", 26379), ("::1", 26380))``."""
    nodes = []
    for number, item in enumerate((part.strip() for part in text.split(",") if part.strip()), start=1):
        match = _NODE.fullmatch(item)
        port = int((match["v6port"] or match["port"] or DEFAULT_SENTINEL_PORT) if match else 0)
        if match is None or not 0 < port < 65536:
            # The entry itself is not quoted: a mistyped URL could carry a password.
            raise ValueError(f"REDIS_SENTINELS entry {number} is not host:port (e.g. sentinel-1:26379)")
        nodes.append((match["v6"] or match["host"], port))
    return tuple(nodes)


def sentinel_settings(nodes: str | None, master: str | None, password: str | None) -> SentinelSettings | None:
    """The Sentinel settings from the environment's values, or None when Sentinel is not used."""
    if not nodes and not master:
        if password:
            raise ValueError("REDIS_SENTINEL_PASSWORD is set but REDIS_SENTINELS and REDIS_SENTINEL_MASTER are not")
        return None
    if not nodes or not master:
        raise ValueError("REDIS_SENTINELS and REDIS_SENTINEL_MASTER go together: set both, or neither")
    return SentinelSettings(parse_sentinels(nodes), master.strip(), password or "")


def redis_db(url: str) -> int:
    """The database number of a redis:// URL (0 when it names none)."""
    return int(urlsplit(url).path.lstrip("/") or 0)


def celery_sentinel_conf(
    sentinel: SentinelSettings,
    password: str,
    db: int,
    transport_options: dict[str, Any],
    client_options: dict[str, Any],
) -> dict[str, Any]:
    """Celery settings that point the broker, the result backend and RedBeat at the sentinels.

    The broker URL lists every sentinel with the master's password: kombu moves on to the next one
    when a sentinel cannot be reached, and takes the password from that URL alone (``broker_password``
    would be lost at the switch). Celery shows only the first, masked. The result backend's URL has
    no password: Celery masks only the first URL of a ``;``-separated list there, so the password is
    ``redis_password`` (a setting named *PASS*, masked in ``celery report`` and ``inspect conf``), which
    its sentinel backend uses for every sentinel. ``transport_options`` are the broker's Redis options
    and ``client_options`` the redis-py options RedBeat's client would get without Sentinel.
    """
    hosts = [_netloc(host, port) for host, port in sentinel.nodes]
    sentinel_kwargs = sentinel.sentinel_kwargs(client_options)
    options = {**transport_options, "master_name": sentinel.master, "sentinel_kwargs": sentinel_kwargs}
    auth = f":{quote(password, safe='')}@" if password else ""
    return {
        "broker_url": ";".join(f"sentinel://{auth}{host}/{db}" for host in hosts),
        "broker_transport_options": options,
        "result_backend": ";".join(f"sentinel://{host}/{db}" for host in hosts),
        "redis_password": password or None,
        "result_backend_transport_options": dict(options),
        # RedBeat only looks at the scheme (and shows the URL in its banner, parsed as one host: so the
        # master's name); the sentinels, master, database and password are options. Its Sentinel
        # client takes socket_timeout alone of the socket options (redbeat/schedulers.py).
        "redbeat_redis_url": f"redis-sentinel://{sentinel.master}/{db}",
        "redbeat_redis_options": {
            **{name: value for name, value in client_options.items() if name != "password"},
            "sentinels": list(sentinel.nodes),
            "service_name": sentinel.master,
            "db": db,
            "sentinel_kwargs": sentinel_kwargs,
            **({"password": password} if password else {}),
        },
    }


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
