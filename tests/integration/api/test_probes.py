"""Liveness and readiness when Redis goes away and comes back, on a server with a Redis of its own."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, wait_until
from tests.integration.api.conftest import ApiServer, api_env, problem, running_api


class RedisProcess:
    """A password-less redis-server on a fixed port that a test can stop and start again."""

    def __init__(self, workdir: Path) -> None:
        self.port, self.workdir = free_port(), workdir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is required on PATH"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path)
    server.start()
    yield server
    server.stop()


def readiness(server: ApiServer) -> httpx.Response:
    return httpx.get(f"{server.url}/readyz", timeout=5)


def test_readyz_fails_while_redis_is_down_and_recovers_while_healthz_stays_up(
    database_url: str, redis_url: str, own_redis: RedisProcess, tmp_path: Path
) -> None:
    env = api_env(database_url, redis_url, REDIS_URL=f"redis://127.0.0.1:{own_redis.port}/0")
    with running_api(env, tmp_path / "api.log") as server:
        wait_until(lambda: readiness(server).status_code == 200, 10, "the server to be ready")
        own_redis.stop()
        down = wait_until(lambda: (r := readiness(server)).status_code == 503 and r, 10, "readiness to fail")
        body = problem(down, 503)
        assert body["checks"] == {"database": "ok", "redis": "unreachable"}
        assert body["detail"] == "unreachable: redis"
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
        own_redis.start()
        wait_until(lambda: readiness(server).status_code == 200, 10, "readiness after Redis is back")
