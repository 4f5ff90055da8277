"""A wrong Redis password fails clearly, and the password never appears in the error."""

from __future__ import annotations

import subprocess
from urllib.parse import urlsplit

import pytest

from tenant_worker.adapters.redis_check import check_redis
from tenant_worker.config import ConfigurationError, build_redis_url
from tests.conftest import BIN

WRONG = "not-the-Pa55word#@:/%"


def test_check_redis_with_wrong_password_names_the_problem_but_not_the_password(redis_url):
    port = urlsplit(redis_url).port
    with pytest.raises(ConfigurationError) as caught:
        check_redis(build_redis_url("127.0.0.1", port, 0, WRONG))
    message = str(caught.value)
    assert "rejected the credentials" in message and f"127.0.0.1:{port}" in message
    assert WRONG not in message and "Pa55word" not in message


def test_check_redis_without_password_says_one_is_required(redis_url):
    port = urlsplit(redis_url).port
    with pytest.raises(ConfigurationError, match=r"requires a password|rejected the credentials"):
        check_redis(build_redis_url("127.0.0.1", port, 0))


def test_worker_with_wrong_password_exits_with_a_clear_error(redis_url, worker_env):
    port = urlsplit(redis_url).port
    env = {**worker_env, "REDIS_URL": "", "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(port), "REDIS_PASSWORD": WRONG}
    env.pop("REDIS_URL")
    result = subprocess.run(
        [str(BIN / "tenant-worker"), "worker", "--loglevel", "INFO"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2
    assert "rejected the credentials" in output
    assert WRONG not in output and "Pa55word" not in output and "Traceback" not in output
