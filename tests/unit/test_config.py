"""Settings from the environment: how the Redis URL is built from its parts, how the database password
joins DATABASE_URL, that any password survives the trip into the URL and out through redis-py and
SQLAlchemy, and that secrets never show up in what is printed.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pytest
import redis
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from tenant_worker.adapters.db import normalize_database_url
from tenant_worker.celery_app import create_app
from tenant_worker.config import (
    DEFAULT_DATABASE_URL,
    VISIBILITY_TIMEOUT_SECONDS,
    ConfigurationError,
    add_database_password,
    build_redis_url,
    load_settings,
    redact_text,
    redact_url,
    secrets_of,
    url_password,
    without_password,
)

# Every character that breaks naive URL building: fragment, userinfo end, port separator, path, escape, space.
NASTY_PASSWORD = "#@:/% "

PASSWORDS = [
    pytest.param(NASTY_PASSWORD, id="url-syntax-characters"),
    pytest.param("s3cr#t@:/%pass word", id="mixed"),
    pytest.param("100%25", id="already-looks-encoded"),
    pytest.param("a?b=c&d", id="query-characters"),
    pytest.param("pässwörd€", id="non-ascii"),
    pytest.param("x" * 200, id="long"),
]

password_text = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=40)


def redis_password_seen_by_redis_py(url: str) -> object:
    """What redis-py will send with AUTH for this URL (no connection is made)."""
    return redis.Redis.from_url(url).connection_pool.connection_kwargs.get("password")


def test_redis_url_is_built_from_host_port_db_and_password() -> None:
    env = {"REDIS_HOST": "redis.internal", "REDIS_PORT": "6380", "REDIS_DB": "2", "REDIS_PASSWORD": "hunter2"}

    url = load_settings(env).redis_url

    assert url == "redis://:hunter2@redis.internal:6380/2"
    kwargs = redis.Redis.from_url(url).connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == ("redis.internal", 6380, 2, "hunter2")


def test_redis_url_defaults_to_local_redis_without_a_password() -> None:
    assert load_settings({}).redis_url == "redis://localhost:6379/0"


def test_empty_redis_password_means_no_authentication() -> None:
    assert load_settings({"REDIS_PASSWORD": ""}).redis_url == "redis://localhost:6379/0"


@pytest.mark.parametrize("password", PASSWORDS)
def test_any_redis_password_round_trips_through_the_url(password: str) -> None:
    url = load_settings({"REDIS_HOST": "redis.internal", "REDIS_PASSWORD": password}).redis_url

    parts = urlsplit(url)
    assert parts.password is not None
    assert unquote(parts.password) == password
    assert (parts.hostname, parts.port, parts.path) == ("redis.internal", 6379, "/0")
    assert redis_password_seen_by_redis_py(url) == password


@settings(max_examples=100, deadline=None)
@given(password=password_text)
def test_every_password_reaches_redis_py_unchanged_and_is_redacted(password: str) -> None:
    url = build_redis_url("redis.internal", 6379, 0, password)

    assert redis_password_seen_by_redis_py(url) == password
    assert redact_url(url) == "redis://:**@redis.internal:6379/0"


def test_redis_password_file_is_read_and_wins_over_redis_password(tmp_path: Path) -> None:
    secret = tmp_path / "redis_password"
    secret.write_text(NASTY_PASSWORD.strip() + "-from-file\n", encoding="utf-8")
    env = {"REDIS_PASSWORD": "from-env", "REDIS_PASSWORD_FILE": str(secret)}

    url = load_settings(env).redis_url

    assert redis_password_seen_by_redis_py(url) == "#@:/%-from-file"


def test_redis_password_file_keeps_spaces_that_belong_to_the_password(tmp_path: Path) -> None:
    secret = tmp_path / "redis_password"
    secret.write_text(NASTY_PASSWORD + "\n", encoding="utf-8")

    url = load_settings({"REDIS_PASSWORD_FILE": str(secret)}).redis_url

    assert redis_password_seen_by_redis_py(url) == NASTY_PASSWORD


def test_unreadable_redis_password_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read REDIS_PASSWORD_FILE"):
        load_settings({"REDIS_PASSWORD_FILE": str(tmp_path / "missing")})


def test_redis_url_overrides_every_other_redis_setting(tmp_path: Path) -> None:
    secret = tmp_path / "redis_password"
    secret.write_text("from-file\n", encoding="utf-8")
    url = "redis://:from-url@cache.example:7000/5"
    env = {
        "REDIS_URL": url,
        "REDIS_HOST": "other-host",
        "REDIS_PORT": "1234",
        "REDIS_DB": "9",
        "REDIS_PASSWORD": "from-env",
        "REDIS_PASSWORD_FILE": str(secret),
    }

    assert load_settings(env).redis_url == url


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("rediss://:pw@cache.example:6380/0", id="tls"),
        pytest.param("redis://cache.example:6379/1", id="no-password"),
    ],
)
def test_redis_and_rediss_urls_are_accepted(url: str) -> None:
    assert load_settings({"REDIS_URL": url}).redis_url == url


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://:topsecret@cache.example:6379/0", id="http"),
        pytest.param("unix:///var/run/redis.sock", id="unix-socket"),
        pytest.param("cache.example:6379", id="no-scheme"),
    ],
)
def test_other_url_schemes_are_rejected_without_echoing_the_url(url: str) -> None:
    with pytest.raises(ConfigurationError, match="redis:// or rediss://") as excinfo:
        load_settings({"REDIS_URL": url})
    assert "topsecret" not in str(excinfo.value)


@pytest.mark.parametrize(
    "env",
    [pytest.param({"REDIS_PORT": "http"}, id="port"), pytest.param({"REDIS_DB": "zero"}, id="db")],
)
def test_non_numeric_redis_port_or_db_is_a_configuration_error(env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="must be integers"):
        load_settings(env)


# --- the database password ------------------------------------------------------------------------

DB_URL = "postgresql://tenant_worker@postgres:5432/tenant_worker"


def database_password_file(tmp_path: Path, content: str | bytes) -> str:
    """A secret file as compose and Kubernetes mount it; returns its path."""
    secret = tmp_path / "postgres_password"
    if isinstance(content, bytes):
        secret.write_bytes(content)
    else:
        secret.write_text(content, encoding="utf-8")
    return str(secret)


def seen_by_sqlalchemy(url: str) -> tuple[object, ...]:
    """User, password, host, port and database as SQLAlchemy hands them to psycopg (no connection)."""
    parsed = make_url(normalize_database_url(url))
    return parsed.username, parsed.password, parsed.host, parsed.port, parsed.database


@pytest.mark.parametrize("password", PASSWORDS)
def test_database_password_file_reaches_sqlalchemy_unchanged(tmp_path: Path, password: str) -> None:
    env = {"DATABASE_URL": DB_URL, "DATABASE_PASSWORD_FILE": database_password_file(tmp_path, password + "\n")}

    url = load_settings(env).database_url

    assert seen_by_sqlalchemy(url) == ("tenant_worker", password, "postgres", 5432, "tenant_worker")


@settings(max_examples=100, deadline=None)
@given(password=password_text)
def test_every_database_password_reaches_sqlalchemy_unchanged_and_is_redacted(password: str) -> None:
    url = add_database_password("postgresql+psycopg://app@db:5432/tw?sslmode=require", password)

    assert seen_by_sqlalchemy(url) == ("app", password, "db", 5432, "tw")
    assert make_url(url).query == {"sslmode": "require"}
    assert redact_url(url) == "postgresql+psycopg://app:**@db:5432/tw?sslmode=require"


def test_database_password_file_keeps_spaces_and_strips_only_the_trailing_newline(tmp_path: Path) -> None:
    env = {"DATABASE_URL": DB_URL, "DATABASE_PASSWORD_FILE": database_password_file(tmp_path, " pass word \r\n")}

    assert seen_by_sqlalchemy(load_settings(env).database_url)[1] == " pass word "


def test_database_password_file_wins_over_database_password(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": DB_URL,
        "DATABASE_PASSWORD": "from-env",
        "DATABASE_PASSWORD_FILE": database_password_file(tmp_path, "from-file\n"),
    }

    assert seen_by_sqlalchemy(load_settings(env).database_url)[1] == "from-file"


def test_database_password_variable_is_used_without_a_file() -> None:
    env = {"DATABASE_URL": DB_URL, "DATABASE_PASSWORD": NASTY_PASSWORD}

    assert seen_by_sqlalchemy(load_settings(env).database_url)[1] == NASTY_PASSWORD


def test_database_password_joins_the_default_url_when_database_url_is_unset() -> None:
    url = load_settings({"DATABASE_PASSWORD": "pw"}).database_url

    assert url == DEFAULT_DATABASE_URL.replace("postgres@", "postgres:pw@")


@pytest.mark.parametrize("env", [pytest.param({}, id="unset"), pytest.param({"DATABASE_PASSWORD": ""}, id="empty")])
def test_database_url_is_used_as_given_without_a_password_setting(env: dict[str, str]) -> None:
    url = "postgresql://app:in-url@db:5432/tw"

    assert load_settings({"DATABASE_URL": url, **env}).database_url == url


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("postgresql://app:in-url@db:5432/tw", id="userinfo"),
        pytest.param("postgresql://app:@db:5432/tw", id="empty-userinfo-password"),
        pytest.param("postgresql://app@db:5432/tw?password=in-url", id="query"),
    ],
)
def test_database_url_with_a_password_and_a_password_file_is_a_configuration_error(url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": url, "DATABASE_PASSWORD_FILE": database_password_file(tmp_path, "from-file\n")}

    with pytest.raises(ConfigurationError, match="DATABASE_URL already contains a password") as excinfo:
        load_settings(env)

    assert "DATABASE_PASSWORD_FILE" in str(excinfo.value)
    assert "in-url" not in str(excinfo.value) and "from-file" not in str(excinfo.value)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("postgresql://db:5432/tw", id="no-userinfo"),
        pytest.param("postgresql://@db:5432/tw", id="empty-user"),
        pytest.param("postgresql:///tw?host=/run/postgresql", id="socket"),
    ],
)
def test_database_password_for_a_url_without_a_user_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError, match="names no user") as excinfo:
        load_settings({"DATABASE_URL": url, "DATABASE_PASSWORD": "topsecret"})

    assert "DATABASE_PASSWORD" in str(excinfo.value) and "topsecret" not in str(excinfo.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(None, "cannot read DATABASE_PASSWORD_FILE .*No such file", id="missing"),
        pytest.param("directory", "cannot read DATABASE_PASSWORD_FILE .*Is a directory", id="directory"),
        pytest.param("\n", "DATABASE_PASSWORD_FILE .* is empty", id="empty"),
        pytest.param(b"\xfftopsecret\n", "DATABASE_PASSWORD_FILE .* is not UTF-8", id="binary"),
    ],
)
def test_unusable_database_password_file_is_a_configuration_error_without_its_content(
    tmp_path: Path, content: str | bytes | None, message: str
) -> None:
    if content is None:
        path = str(tmp_path / "missing")
    elif content == "directory":
        path = str(tmp_path)
    else:
        path = database_password_file(tmp_path, content)

    with pytest.raises(ConfigurationError, match=message) as excinfo:
        load_settings({"DATABASE_URL": DB_URL, "DATABASE_PASSWORD": "topsecret", "DATABASE_PASSWORD_FILE": path})

    assert path in str(excinfo.value)
    assert "topsecret" not in str(excinfo.value) and "\\xff" not in str(excinfo.value)


@pytest.mark.parametrize("password", PASSWORDS)
def test_settings_repr_never_contains_the_database_password(tmp_path: Path, password: str) -> None:
    env = {"DATABASE_URL": DB_URL, "DATABASE_PASSWORD_FILE": database_password_file(tmp_path, password)}
    loaded = load_settings(env)

    shown = repr(loaded)

    assert password not in shown
    assert urlsplit(loaded.database_url).password not in shown
    assert redact_url(loaded.database_url) == "postgresql://tenant_worker:**@postgres:5432/tenant_worker"


def test_settings_repr_leaves_out_the_sentry_dsn_and_its_key() -> None:
    dsn = "https://0123456789abcdef@o1.ingest.sentry.io/42"
    shown = repr(load_settings({"SENTRY_DSN": dsn}))
    assert "0123456789abcdef" not in shown and "sentry.io" not in shown


def test_messagebird_backend_without_an_access_key_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="MESSAGEBIRD_ACCESS_KEY"):
        load_settings({"SMS_BACKEND": "messagebird"})


def test_messagebird_backend_with_an_access_key_is_accepted() -> None:
    loaded = load_settings({"SMS_BACKEND": "messagebird", "MESSAGEBIRD_ACCESS_KEY": "live_abc"})
    assert (loaded.sms_backend, loaded.messagebird_access_key) == ("messagebird", "live_abc")


def test_unknown_sms_backend_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="SMS_BACKEND"):
        load_settings({"SMS_BACKEND": "twilio"})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param({"SEND_RETRY_CAP_SECONDS": "soon"}, "must be a number", id="not-a-number"),
        pytest.param(
            {"SEND_RETRY_CAP_SECONDS": str(VISIBILITY_TIMEOUT_SECONDS)}, "visibility timeout", id="cap-too-long"
        ),
        pytest.param({"MAX_IN_FLIGHT": "0"}, ">= 1", id="zero-in-flight"),
        pytest.param({"SEND_BATCH_SIZE": "-1"}, ">= 1", id="negative-batch"),
        pytest.param({"BROKER_CONNECTION_MAX_RETRIES": "-1"}, ">= 0", id="negative-broker-retries"),
    ],
)
def test_malformed_numeric_settings_are_configuration_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_settings(env)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        pytest.param(build_redis_url("cache", 6380, 3, NASTY_PASSWORD), "redis://:**@cache:6380/3", id="built"),
        pytest.param("redis://:plain@cache:6379/0", "redis://:**@cache:6379/0", id="plain-password"),
        pytest.param("rediss://:pw@cache:6380/0", "rediss://:**@cache:6380/0", id="tls"),
        pytest.param("redis://alice:pw@cache:6379/0", "redis://alice:**@cache:6379/0", id="keeps-username"),
        pytest.param("redis://cache:6379/0", "redis://cache:6379/0", id="no-password-unchanged"),
        pytest.param("postgresql://app@db:5432/tw", "postgresql://app@db:5432/tw", id="user-without-password"),
        pytest.param(
            "postgresql://app@db/tw?sslmode=require&password=pw%23x",
            "postgresql://app@db/tw?sslmode=require&password=**",
            id="libpq-password-parameter",
        ),
        pytest.param("postgresql:///tw?password=pw&host=/run", "postgresql:///tw?password=**&host=/run", id="socket"),
    ],
)
def test_redact_url_hides_the_password_and_keeps_the_rest_readable(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize("password", PASSWORDS)
def test_redacted_redis_url_never_contains_the_password(password: str) -> None:
    loaded = load_settings({"REDIS_HOST": "cache", "REDIS_PASSWORD": password})

    shown = loaded.redacted_redis_url

    assert shown == "redis://:**@cache:6379/0"
    assert password not in shown
    encoded = urlsplit(loaded.redis_url).password
    assert encoded is not None
    assert encoded not in shown


def test_redact_text_removes_a_secret_and_its_url_encoded_form_from_free_text() -> None:
    url = build_redis_url("cache", 6379, 0, NASTY_PASSWORD)
    encoded = urlsplit(url).password
    assert encoded is not None
    text = f"Error connecting with {url}; AUTH {NASTY_PASSWORD!r} rejected (sent {encoded})"

    cleaned = redact_text(text, [NASTY_PASSWORD])

    assert NASTY_PASSWORD not in cleaned
    assert encoded not in cleaned
    assert "redis://:**@cache:6379/0" in cleaned


def test_redact_text_hides_passwords_of_database_and_redis_urls_it_was_not_told_about() -> None:
    text = "could not connect: postgresql+psycopg://app:dbpass@db:5432/tw and rediss://:rpass@cache:6380/0"

    cleaned = redact_text(text, [])

    assert "dbpass" not in cleaned
    assert "rpass" not in cleaned
    assert "postgresql+psycopg://app:**@db:5432/tw" in cleaned
    assert "rediss://:**@cache:6380/0" in cleaned


@pytest.mark.parametrize("password", PASSWORDS)
def test_redact_text_removes_a_database_password_however_sqlalchemy_renders_the_url(password: str) -> None:
    url = add_database_password("postgresql+psycopg://app@db:5432/tw", password)
    rendered = make_url(url).render_as_string(hide_password=False)
    text = f"could not use {rendered}; password={password}"

    cleaned = redact_text(text, [password])

    assert password not in cleaned
    assert cleaned.startswith("could not use postgresql+psycopg://app:**@db:5432/tw;"), cleaned


@pytest.mark.parametrize("password", PASSWORDS)
def test_redact_text_removes_a_database_password_sqlalchemy_renders_as_a_url_parameter(password: str) -> None:
    url = "postgresql+psycopg://app@db:5432/tw?password=" + quote(password, safe="")
    rendered = make_url(url).render_as_string(hide_password=False)

    cleaned = redact_text(f"could not use {rendered}", [url_password(url)])

    assert cleaned == "could not use postgresql+psycopg://app@db:5432/tw?password=**", cleaned


def test_redact_text_ignores_empty_secrets() -> None:
    assert redact_text("nothing secret here", ["", "absent"]) == "nothing secret here"


@settings(max_examples=100, deadline=None)
@given(password=password_text)
def test_redact_text_never_leaves_a_known_secret_in_an_error_message(password: str) -> None:
    template = "AUTH {} rejected by {}"
    url = build_redis_url("cache", 6379, 0, password)
    # A password that is part of the surrounding words, or of the mask itself, cannot be told apart.
    assume("*" not in password and password not in template.format("", "redis://:@cache:6379/0"))

    cleaned = redact_text(template.format(password, url), [password])

    assert cleaned == template.format("**", "redis://:**@cache:6379/0")


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_url_without_its_password_still_names_the_server_and_the_user(password: str) -> None:
    url = build_redis_url("cache", 6380, 2, password)
    assert without_password(url) == "redis://cache:6380/2"
    assert without_password(url.replace("://:", "://app:")) == "redis://app@cache:6380/2"
    # redis-py joins the password given beside the URL with the rest of it.
    kwargs = redis.ConnectionPool.from_url(without_password(url), password=url_password(url)).connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == ("cache", 6380, 2, password)


def test_a_url_without_its_password_drops_a_password_parameter_and_keeps_the_others() -> None:
    assert without_password("redis://cache/0?password=x%20y&ssl_cert_reqs=none") == "redis://cache/0?ssl_cert_reqs=none"
    assert without_password("redis://cache/0?password=x") == "redis://cache/0"
    assert without_password("redis://cache:6379/0") == "redis://cache:6379/0"


def test_zero_broker_connection_retries_the_default_means_celery_retries_forever() -> None:
    assert create_app(load_settings({"BROKER_CONNECTION_MAX_RETRIES": "0"})).conf.broker_connection_max_retries is None
    assert create_app(load_settings({})).conf.broker_connection_max_retries is None
    assert create_app(load_settings({"BROKER_CONNECTION_MAX_RETRIES": "100"})).conf.broker_connection_max_retries == 100


def test_delivery_receipt_settings(tmp_path) -> None:
    secret = tmp_path / "signing-key"
    secret.write_text("from-file\n")
    settings = load_settings(
        {"PUBLIC_BASE_URL": "https://tw.example.com/", "MESSAGEBIRD_SIGNING_KEY_FILE": str(secret),
         "STOP_KEYWORDS": "stop, halt ,"}
    )  # fmt: skip
    assert settings.report_url == "https://tw.example.com/v1/dlr/messagebird"
    assert settings.messagebird_signing_key == "from-file"
    assert "from-file" not in repr(settings) and "from-file" in secrets_of(settings)
    assert settings.stop_keywords == ("stop", "halt")
    assert load_settings({}).report_url is None


def test_a_public_base_url_must_be_http() -> None:
    with pytest.raises(ConfigurationError, match="PUBLIC_BASE_URL"):
        load_settings({"PUBLIC_BASE_URL": "tw.example.com"})
