"""Celery's own debug commands, banners and logs never show a password or an access key.

Everything runs through the real ``celery`` and ``tenant-worker`` commands against the password-protected
test Redis, with a recognisable Redis password, a database password (the local PostgreSQL trusts
127.0.0.1, so any password connects) and the MessageBird access key in the environment. The worker and
beat use Redis database 15 of their own, so ``inspect`` talks to exactly this worker.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import redis

from tests.conftest import ACCESS_KEY, BIN, REDIS_PASSWORD, redis_db_url, wait_until

DATABASE_PASSWORD = "pg-Zq81 s3cret"


def secret_forms(env: dict[str, str]) -> list[str]:
    """Every way the secrets of ``env`` could be written: raw, URL-encoded, form-encoded, and a piece of
    each password that survives one cut in half."""
    forms = [REDIS_PASSWORD[:4], DATABASE_PASSWORD[:6], env["SENTRY_DSN"]]
    for secret in (REDIS_PASSWORD, DATABASE_PASSWORD, ACCESS_KEY):
        forms += [secret, quote(secret, safe=""), quote_plus(secret)]
    return forms


def assert_no_secret(output: str, env: dict[str, str]) -> None:
    leaked = [form for form in secret_forms(env) if form in output]
    assert not leaked, f"{leaked} found in:\n{output[-3000:]}"


@pytest.fixture
def env(worker_env: dict[str, str], redis_url: str) -> dict[str, str]:
    url = redis_db_url(redis_url, 15)
    redis.Redis.from_url(url).flushdb()
    return {**worker_env, "REDIS_URL": url, "DATABASE_PASSWORD": DATABASE_PASSWORD}


def celery(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "celery"), "-A", "tenant_worker.celery_app", *args],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_celery_report_masks_every_password(env):
    report = celery(env, "report")
    assert report.returncode == 0, report.stderr
    output = report.stdout + report.stderr
    # RedBeat gets the password as an option Celery masks, not inside its URL.
    assert "redbeat_redis_url: 'redis://127.0.0.1:" in output and "'password': '********'" in output
    assert "TenantRouter" in output
    assert_no_secret(output, env)


def test_inspect_commands_against_a_running_worker_show_no_secret(env, start_worker):
    worker = start_worker(**env)
    name = re.search(r"(test-[0-9a-f]{6}@\S+) v\d", worker.text())
    assert name, worker.text()
    for command in ("conf", "stats", "report"):
        reply = celery(env, "inspect", command, "--destination", name[1], "--timeout", "10", "--json")
        assert reply.returncode == 0 and name[1] in reply.stdout, reply.stdout + reply.stderr
        assert_no_secret(reply.stdout + reply.stderr, env)
    assert "redbeat_redis_options" in celery(env, "inspect", "conf", "-d", name[1], "--json").stdout
    worker.stop()
    assert_no_secret(worker.text(), env)


def test_beat_banner_and_debug_log_show_no_secret(env, tmp_path: Path):
    log = tmp_path / "beat.log"
    with log.open("wb") as out:
        beat = subprocess.Popen(
            [str(BIN / "tenant-worker"), "beat", "--loglevel", "DEBUG"],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
        )  # fmt: skip
    try:
        synced = lambda: "schedules synced" in log.read_text(errors="replace")  # noqa: E731
        wait_until(lambda: synced() or beat.poll() is not None, 30, "beat to lead and sync its schedules")
        assert beat.poll() is None, log.read_text(errors="replace")[-3000:]
    finally:
        beat.terminate()
        beat.wait(20)
    text = log.read_text(errors="replace")
    assert "redis://:**@127.0.0.1" in text  # the banner shows where the broker is, masked
    assert_no_secret(text, env)
