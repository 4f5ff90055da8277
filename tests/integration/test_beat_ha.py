"""Two real ``tenant-worker beat`` processes against the password-protected Redis: one leads, the other
waits; the standby takes over when the leader is killed; a beat that stalls past its lease while
another takes over exits non-zero.

The beats use their own Redis database (so no test worker consumes what they publish) and a
4-second lock timeout, which is what BEAT_LOCK_TIMEOUT is for.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis

from tenant_worker import constants
from tests.conftest import BIN, REDIS_PASSWORD, wait_until

LOCK_KEY = constants.REDBEAT_KEY_PREFIX + ":lock"
LOCK_TIMEOUT = 4


@pytest.fixture
def beat_env(worker_env: dict[str, str]) -> dict[str, str]:
    env = dict(worker_env)
    env.update(
        REDIS_URL=worker_env["REDIS_URL"].rsplit("/", 1)[0] + "/9",
        BEAT_LOCK_TIMEOUT=str(LOCK_TIMEOUT),
        BEAT_MAX_INTERVAL="1",
    )
    client = redis.Redis.from_url(env["REDIS_URL"])
    client.flushdb()
    return env


@pytest.fixture
def start_beat(beat_env: dict[str, str], tmp_path: Path) -> Iterator:
    processes: list[subprocess.Popen[bytes]] = []

    def start(name: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = tmp_path / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(BIN / "tenant-worker"), "beat", "--loglevel", "DEBUG"],
                env=beat_env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
            )  # fmt: skip
        processes.append(process)
        return process, log

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def text(log: Path) -> str:
    return log.read_text(errors="replace")


def leads(log: Path) -> bool:
    return "beat: Acquired lock" in text(log)


def test_one_beat_leads_the_other_waits_and_takes_over_when_the_leader_is_killed(start_beat, beat_env):
    leader, leader_log = start_beat("a")
    wait_until(lambda: leads(leader_log) or leader.poll() is not None, 30, "the first beat to take the lock")
    assert leader.poll() is None, text(leader_log)[-3000:]
    # It reconciled the schedules at start (the static entries and tenants' entries are in Redis).
    wait_until(lambda: "schedules synced" in text(leader_log), 30, "the leader's schedule sync")

    standby, standby_log = start_beat("b")
    wait_until(lambda: "Acquiring lock" in text(standby_log), 30, "the standby to wait for the lock")
    # While the leader lives and renews the lock (here: for two lock timeouts), the standby waits.
    renewals = text(leader_log).count("Extending lock")
    wait_until(lambda: text(leader_log).count("Extending lock") >= renewals + 2 * LOCK_TIMEOUT, 30,
               "the leader to renew its lock for two lock timeouts")  # fmt: skip
    assert standby.poll() is None and not leads(standby_log)

    os.kill(leader.pid, signal.SIGKILL)
    leader.wait(10)
    # The lock expires within its timeout and the standby polls every beat interval.
    wait_until(lambda: leads(standby_log), LOCK_TIMEOUT + 1 + 5, "the standby to take over")
    wait_until(lambda: "schedules synced" in text(standby_log), 30, "the new leader's schedule sync")
    assert standby.poll() is None
    for log in (leader_log, standby_log):
        assert REDIS_PASSWORD not in text(log) and quote(REDIS_PASSWORD, safe="") not in text(log)


def test_a_beat_that_stalls_past_its_lease_and_finds_another_leader_exits_3(start_beat, beat_env):
    beat, log = start_beat("lonely")
    wait_until(lambda: leads(log) or beat.poll() is not None, 30, "the beat to take the lock")
    client = redis.Redis.from_url(beat_env["REDIS_URL"])
    os.kill(beat.pid, signal.SIGSTOP)  # a stall: the process is alive but does not run
    try:
        wait_until(lambda: not client.exists(LOCK_KEY), LOCK_TIMEOUT + 5, "the stalled beat's lease to run out")
        client.set(LOCK_KEY, "another-beat", px=60_000)  # a standby took over meanwhile
    finally:
        os.kill(beat.pid, signal.SIGCONT)
    code = wait_until(lambda: beat.poll(), 30, "the beat to exit")
    assert code == 3
    assert "lost the beat lock" in text(log)
    assert client.get(LOCK_KEY) == b"another-beat", "it never touched the new leader's lock"
