"""Secrets never reach log output."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from sqlalchemy.engine import make_url

from tenant_worker.celery_app import RedactingFilter, secrets_of
from tenant_worker.config import Settings, build_redis_url, load_settings


def test_log_records_never_contain_the_redis_password_or_access_key() -> None:
    password = "p@ss:w/rd#%"
    settings = Settings(
        redis_url=build_redis_url("redis", 6379, 0, password),
        sms_backend="messagebird",
        messagebird_access_key="live_abcdef123456",
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(secrets_of(settings)))
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    logger.warning("connecting to %s with key %s", settings.redis_url, settings.messagebird_access_key)
    logger.warning("raw password %s", password)
    logger.removeHandler(handler)
    output = stream.getvalue()
    assert password not in output and "p%40ss" not in output and "live_abcdef123456" not in output
    assert "redis://:**@redis:6379/0" in output


def test_settings_repr_hides_urls_and_keys() -> None:
    settings = Settings(redis_url=build_redis_url("h", 1, 0, "hunter2"), messagebird_access_key="k-123")
    assert "hunter2" not in repr(settings) and "k-123" not in repr(settings)


def test_log_records_never_contain_the_database_password_from_the_secret_file(tmp_path: Path) -> None:
    password = "pg pass@:/%#?"
    secret = tmp_path / "postgres_password"
    secret.write_text(password + "\n", encoding="utf-8")
    settings = load_settings({"DATABASE_URL": "postgresql://app@db:5432/tw", "DATABASE_PASSWORD_FILE": str(secret)})
    rendered = make_url(settings.database_url).render_as_string(hide_password=False)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(secrets_of(settings)))
    logger = logging.getLogger("test.redaction.database")
    logger.addHandler(handler)
    logger.warning("connecting to %s", settings.database_url)
    logger.warning("engine url %s", rendered)
    logger.warning("conninfo user=app password=%s host=db", password)
    logger.removeHandler(handler)
    output = stream.getvalue()
    assert password not in output and "pg%20pass" not in output and "pg pass%40" not in output
    assert output.count("postgresql://app:**@db:5432/tw") == 2, output
    assert "password=** host=db" in output
    assert password not in repr(settings) and "pg%20pass" not in repr(settings)


def test_a_database_password_given_as_a_url_parameter_is_never_logged() -> None:
    settings = Settings(
        redis_url="redis://localhost:6379/0", database_url="postgresql://app@db/tw?password=pg%20s3cret"
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(secrets_of(settings)))
    logger = logging.getLogger("test.redaction.query")
    logger.addHandler(handler)
    logger.warning("connecting with password %s", "pg s3cret")
    logger.removeHandler(handler)
    assert "s3cret" not in stream.getvalue()
