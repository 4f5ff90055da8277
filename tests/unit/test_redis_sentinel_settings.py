"""Redis Sentinel settings: parsing ``REDIS_SENTINELS``, what the broker, the result backend, RedBeat and
redis-py are configured with (read back from the real libraries, no connection made), and that no
password shows in a repr, a message or Celery's own configuration dump.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import pytest
import redis
from kombu.transport import redis as kombu_redis
from kombu.utils.url import parse_url
from redbeat.schedulers import get_redis
from redis.sentinel import SentinelConnectionPool

from tenant_worker.adapters.redbeat import redbeat_redis
from tenant_worker.adapters.redis_check import describe_redis
from tenant_worker.adapters.redis_client import redis_client
from tenant_worker.celery_app import create_app
from tenant_worker.config import ConfigurationError, load_settings, secrets_of
from tenant_worker.redis_settings import SentinelSettings, parse_sentinels, sentinel_settings

PASSWORD = "m#st;er@:/% pw"
SENTINEL_PASSWORD = "s3nt;nel#@ pw"
ENV = {
    "REDIS_SENTINELS": "sentinel-1:26379, sentinel-2:26380,sentinel-3",
    "REDIS_SENTINEL_MASTER": "tw-master",
    "REDIS_PASSWORD": PASSWORD,
    "REDIS_SENTINEL_PASSWORD": SENTINEL_PASSWORD,
    "REDIS_DB": "3",
}
NODES = (("sentinel-1", 26379), ("sentinel-2", 26380), ("sentinel-3", 26379))


def forms(*secrets: str) -> list[str]:
    """Every way a secret could be written out: raw and percent-encoded, and its first half."""
    return [form for secret in secrets for form in (secret, quote(secret, safe=""), secret[: len(secret) // 2])]


@pytest.mark.parametrize(
    ("text", "nodes"),
    [
        ("a:1", (("a", 1),)),
        ("a", (("a", 26379),)),
        (" a:1 ,, b.internal:26380 ,", (("a", 1), ("b.internal", 26380))),
        ("10.0.0.7:26379,[::1]:26380,[fe80::1]", (("10.0.0.7", 26379), ("::1", 26380), ("fe80::1", 26379))),
    ],
)
def test_sentinels_are_parsed_from_a_comma_separated_host_port_list(text: str, nodes: tuple) -> None:
    assert parse_sentinels(text) == nodes


@pytest.mark.parametrize("text", ["a:0", "a:65536", "a:b", "redis://:hunter2@a:1", ":hunter2@a:1", "a:1:2"])
def test_a_malformed_sentinel_is_refused_without_quoting_the_entry(text: str) -> None:
    with pytest.raises(ValueError, match="REDIS_SENTINELS entry 2 is not host:port") as error:
        parse_sentinels(f"ok:1,{text}")
    assert "hunter2" not in str(error.value)


def test_sentinel_needs_both_the_sentinels_and_the_master_name() -> None:
    assert sentinel_settings(None, None, None) is None
    assert sentinel_settings("", "", None) is None
    for nodes, master in [("a:1", None), (None, "m"), ("a:1", ""), (",", "m")]:
        with pytest.raises(ValueError, match="REDIS_SENTINEL"):
            sentinel_settings(nodes, master, None)
    with pytest.raises(ValueError, match="REDIS_SENTINEL_PASSWORD is set but"):
        sentinel_settings(None, None, "pw")
    with pytest.raises(ValueError, match="REDIS_SENTINEL_MASTER must be"):
        sentinel_settings("a:1", "my master", None)


def test_sentinel_settings_come_from_the_environment_with_the_password_from_its_file(tmp_path: Path) -> None:
    secret = tmp_path / "sentinel-password"
    secret.write_text(SENTINEL_PASSWORD + "\n")
    env = {**ENV, "REDIS_SENTINEL_PASSWORD": "ignored: the file wins", "REDIS_SENTINEL_PASSWORD_FILE": str(secret)}
    settings = load_settings(env)
    assert settings.redis_sentinel == SentinelSettings(NODES, "tw-master", SENTINEL_PASSWORD)
    assert SENTINEL_PASSWORD in secrets_of(settings) and PASSWORD in secrets_of(settings)
    shown = " ".join(
        [repr(settings), settings.redacted_redis_url, describe_redis(settings.redis_url, settings.redis_sentinel)]
    )
    assert "tw-master" in shown and "sentinel-2:26380" in shown
    assert not [form for form in forms(PASSWORD, SENTINEL_PASSWORD) if form in shown]


def test_sentinel_settings_errors_are_configuration_errors_that_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="REDIS_URL names one server"):
        load_settings({**ENV, "REDIS_URL": "redis://:pw@cache:6379/0"})
    with pytest.raises(ConfigurationError, match="go together"):
        load_settings({"REDIS_SENTINELS": "a:1"})
    with pytest.raises(ConfigurationError, match="REDIS_SENTINEL_PASSWORD_FILE"):
        load_settings({**ENV, "REDIS_SENTINEL_PASSWORD_FILE": str(tmp_path / "missing")})


def test_without_sentinel_settings_every_client_uses_the_redis_url() -> None:
    settings = load_settings({"REDIS_HOST": "cache", "REDIS_PASSWORD": PASSWORD})
    conf = create_app(settings).conf
    assert settings.redis_sentinel is None
    assert conf.broker_url == conf.result_backend == settings.redis_url
    assert conf.redbeat_redis_url == "redis://cache:6379/0"
    assert "master_name" not in conf.broker_transport_options
    assert redis_client(settings.redis_url, None).connection_pool.connection_kwargs["host"] == "cache"


def test_the_broker_asks_every_sentinel_for_the_master_with_the_masters_password() -> None:
    app = create_app(load_settings(ENV))
    connection = app.connection_for_write()
    assert connection.transport_cls == "sentinel"
    # kombu moves to the next URL when a sentinel cannot be reached, and takes the password from it.
    urls = [parse_url(url) for url in connection.alt]
    assert [(url["hostname"], url["port"], url["password"], url["virtual_host"]) for url in urls] == [
        (host, port, PASSWORD, "3") for host, port in NODES
    ]
    options = app.conf.broker_transport_options
    assert options["master_name"] == "tw-master"
    assert options["sentinel_kwargs"] == {
        "socket_timeout": 10,
        "socket_connect_timeout": 5,
        "password": SENTINEL_PASSWORD,
    }
    assert options["visibility_timeout"] == 3600, "the broker's own options are kept"


def test_the_result_backend_is_celerys_sentinel_backend_with_both_passwords() -> None:
    app = create_app(load_settings(ENV))
    backend = app.backend
    assert type(backend).__name__ == "SentinelBackend"
    pool = backend.client.connection_pool  # built without connecting
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "tw-master"
    assert pool.connection_kwargs["password"] == PASSWORD and str(pool.connection_kwargs["db"]) == "3"
    assert [s.connection_pool.connection_kwargs["password"] for s in pool.sentinel_manager.sentinels] == [
        SENTINEL_PASSWORD
    ] * 3


def test_redbeat_takes_its_sentinel_branch() -> None:
    app = create_app(load_settings(ENV))
    pool = get_redis(app).connection_pool
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "tw-master"
    assert pool.connection_kwargs["password"] == PASSWORD and pool.connection_kwargs["db"] == 3
    sentinels = pool.sentinel_manager.sentinels
    assert [
        (s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"]) for s in sentinels
    ] == list(NODES)
    assert sentinels[0].connection_pool.connection_kwargs["password"] == SENTINEL_PASSWORD


def test_redbeat_keeps_one_sentinel_client_instead_of_a_new_pool_per_call() -> None:
    app = create_app(load_settings(ENV))
    assert get_redis(app) is not get_redis(app), "RedBeat's own behaviour, which redbeat_redis corrects"
    client = redbeat_redis(app)
    assert get_redis(app) is client and redbeat_redis(app) is client
    assert client.connection_pool.service_name == "tw-master"


def test_bootstraps_client_finds_the_master_through_the_sentinels() -> None:
    settings = load_settings(ENV)
    client = redis_client(settings.redis_url, settings.redis_sentinel, socket_timeout=5)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "tw-master"
    assert pool.connection_kwargs["password"] == PASSWORD and pool.connection_kwargs["db"] == 3
    sentinel = pool.sentinel_manager.sentinels[0].connection_pool.connection_kwargs
    assert (sentinel["host"], sentinel["password"], sentinel["socket_timeout"]) == ("sentinel-1", SENTINEL_PASSWORD, 5)


def test_celerys_configuration_dump_shows_no_password() -> None:
    app = create_app(load_settings(ENV))
    dump = app.conf.humanize(with_defaults=False, censored=True)
    assert "sentinel://" in dump and "tw-master" in dump
    assert not [form for form in forms(PASSWORD, SENTINEL_PASSWORD) if form in dump]


@pytest.mark.parametrize("channel_class", [kombu_redis.Channel, kombu_redis.SentinelChannel])
def test_a_publish_retried_on_a_closed_channel_is_a_connection_error_not_an_attribute_error(channel_class) -> None:
    # Seen once in ~20 failover runs: kombu retried a publish on a channel whose connection it had
    # closed, and kombu's own code failed with AttributeError, which no caller treats as "Redis away".
    # create_app (imported above) installs the fix in every process that publishes.
    closed = SimpleNamespace(connection=None)
    with pytest.raises(redis.ConnectionError, match="broker connection was closed"):
        channel_class._connparams(closed)
