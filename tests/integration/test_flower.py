"""Flower as the README runs it: `celery -A tenant_worker.celery_app flower`, against the password-protected
Redis broker, with basic auth on every page (its /metrics included)."""

from __future__ import annotations

import base64
import re
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import BIN, REDIS_PASSWORD, WorkerProcess, free_port, redis_db_url, wait_until

USER, PASSWORD = "ops", "fl0wer:pa ss#word"
PAGES = ("/", "/workers", "/tasks", "/broker", "/api/workers", "/api/tasks", "/metrics")


def get(url: str, auth: tuple[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)  # noqa: S310 (our own Flower on loopback)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture
def flower(worker_env: dict[str, str], redis_url: str, tmp_path: Path) -> Iterator[str]:
    """A real Flower on a free port, on its own Redis database; yields its base URL."""
    port = free_port()
    env = {**worker_env, "REDIS_URL": redis_db_url(redis_url, 22), "FLOWER_BASIC_AUTH": f"{USER}:{PASSWORD}"}
    log = tmp_path / "flower.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "celery"), "-A", "tenant_worker.celery_app", "flower", f"--port={port}", "--address=127.0.0.1"],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if process.poll() is not None:
            pytest.fail(f"flower exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            return get(url + "/healthcheck")[0] == 200
        except OSError:
            return False

    try:
        wait_until(up, 30, "flower to answer")
        yield url
    finally:
        process.terminate()
        process.wait(20)
        text = log.read_text(errors="replace")
        assert PASSWORD not in text and REDIS_PASSWORD not in text


def test_flower_refuses_every_page_without_credentials_and_shows_the_workers_with_them(
    flower: str, redis_url: str, start_worker: Callable[..., WorkerProcess]
) -> None:
    for page in PAGES:
        assert get(flower + page)[0] == 401, page
        assert get(flower + page, (USER, "wrong"))[0] == 401, page
    worker = start_worker("--shards", "14", REDIS_URL=redis_db_url(redis_url, 22))
    [hostname] = set(re.findall(r"test-[0-9a-f]{6}@[\w.-]+", worker.text()))
    for page in PAGES:
        status, body = get(flower + page, (USER, PASSWORD))
        assert status == 200, (page, body[:300])

    def listed() -> bool:
        status, body = get(flower + "/api/workers?refresh=1", (USER, PASSWORD))
        return status == 200 and hostname.encode() in body

    # Flower reaches the password-protected broker: the worker answers its inspect broadcast.
    wait_until(listed, 30, "flower to list the worker")
