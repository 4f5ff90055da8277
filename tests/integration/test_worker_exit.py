"""``tenant-worker worker`` tells its supervisor how it stopped: status 0 when an operator stopped it
(SIGTERM: warm shutdown), non-zero when it stopped because of an error. Real worker processes."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
import uuid

import pytest

from tenant_worker.config import build_redis_url
from tests.conftest import BIN, free_port, wait_until


def test_sigterm_is_a_clean_stop_with_status_0(start_worker):
    worker = start_worker("--queues", f"exit-test-{uuid.uuid4().hex[:6]}")
    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(30) == 0
    assert "Warm shutdown" in worker.text()


def test_a_worker_that_loses_redis_for_good_exits_with_status_1_once_its_retries_are_spent(worker_env, tmp_path):
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is required on PATH")
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    log = tmp_path / "worker.log"
    try:
        env = {**worker_env, "REDIS_URL": build_redis_url("127.0.0.1", port), "BROKER_CONNECTION_MAX_RETRIES": "1"}
        with log.open("wb") as out:
            wait_until(lambda: _accepts(port), 10, "redis-server to listen")
            worker = subprocess.Popen(
                [str(BIN / "tenant-worker"), "worker", "--queues", "exit-test", "--loglevel", "INFO",
                 "--without-mingle", "--without-gossip"],
                env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:

            def text() -> str:
                return log.read_text(errors="replace")

            wait_until(lambda: "ready." in text() or worker.poll() is not None, 60, "worker ready")
            assert worker.poll() is None, text()[-3000:]
            server.kill()
            server.wait(10)
            lost = time.monotonic()
            status = worker.wait(60)
            print(f"worker exited {time.monotonic() - lost:.1f} s after Redis went away, status {status}")
            assert status == 1, text()[-3000:]
            assert "Unrecoverable error" in text() and "Connection refused" in text()
        finally:
            if worker.poll() is None:
                worker.kill()
    finally:
        server.kill()
        server.wait(10)


def test_an_option_celery_does_not_know_is_a_usage_error_with_status_2(worker_env):
    out = subprocess.run(
        [str(BIN / "tenant-worker"), "worker", "--queues", "exit-test", "--no-such-option"],
        env=worker_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2
    assert "No such option" in out.stderr and "Traceback" not in out.stderr


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False
