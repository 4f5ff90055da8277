"""Redis restarted under a running system, with and without its data: the worker and beat carry on by
themselves (no supervisor), beat never has two leaders, and nothing is lost.

Each test starts its own password-protected ``redis-server`` (on a free port, with or without an
append-only file), stops it with a signal and starts it again on the same port, with real
``tenant-worker worker`` and ``tenant-worker beat`` processes on it. Beat's lock timeout and interval
and the recovery settings are shortened. Run with ``-s`` to see the recovery times measured.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from redbeat.schedulers import RedBeatSchedulerEntry

from tenant_worker import constants
from tenant_worker.adapters.celery_publisher import CeleryReminderQueue
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.celery_app import create_app
from tenant_worker.config import build_redis_url
from tenant_worker.services.sweep import sweep_tenant
from tenant_worker_dev.emulators.messagebird import MessageBirdEmulator
from tests.conftest import (
    ACCESS_KEY,
    REDIS_PASSWORD,
    Beat,
    free_port,
    wait_until,
)
from tests.integration.test_self_healing import accepted_for, rows, tenant_with_due

LOCK_TIMEOUT = 6
LOCK_KEY = constants.REDBEAT_KEY_PREFIX + ":lock"
RECOVER_KEY = constants.REDBEAT_KEY_PREFIX + "recover"
FAST = {
    "BEAT_LOCK_TIMEOUT": str(LOCK_TIMEOUT),
    "BEAT_MAX_INTERVAL": "1",
    "RECOVERY_INTERVAL_SECONDS": "1",
    "STALE_SENDING_SECONDS": "4",
    "REQUEUE_AFTER_SECONDS": "3",
    "RECORD_RETRY_SECONDS": "1",
    "MESSAGEBIRD_CONNECT_TIMEOUT": "0.5",
    "RATE_WAIT_MAX_SECONDS": "1",
}


class RedisServer:
    """A password-protected redis-server of the test's own that can be stopped and started again on
    the same port and directory (so an append-only file, if any, is loaded again)."""

    def __init__(self, workdir: Path, append_only: bool) -> None:
        self.workdir, self.append_only = workdir, append_only
        self.port = free_port()
        self.url = build_redis_url("127.0.0.1", self.port, 0, REDIS_PASSWORD)
        self.client = self.connect(REDIS_PASSWORD)
        self.process: subprocess.Popen[bytes] | None = None

    def connect(self, password: str) -> redis.Redis:
        url = build_redis_url("127.0.0.1", self.port, 0, password)
        return redis.Redis.from_url(url, decode_responses=True, socket_timeout=2)

    def start(self, password: str = REDIS_PASSWORD) -> float:
        """Start it; returns time.monotonic() when it first answered PING."""
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is required on PATH (apt-get install redis-server)")
        persistence = ["--appendonly", "yes"] if self.append_only else ["--appendonly", "no"]
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--requirepass", password,
             "--save", "", *persistence, "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.client = self.connect(password)
        return wait_until(self.answers, 10, "redis-server to accept connections", interval=0.01)

    def answers(self) -> float | None:
        try:
            return time.monotonic() if self.client.ping() else None
        except redis.RedisError:
            return None

    def stop(self, sig: signal.Signals) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(10)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Callable[[bool], RedisServer]]:
    servers: list[RedisServer] = []

    def make(append_only: bool) -> RedisServer:
        server = RedisServer(tmp_path, append_only)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop(signal.SIGKILL)


def recover_ran_after(server: RedisServer, moment: dt.datetime) -> bool:
    """Beat sent its ``recover`` entry after ``moment`` (RedBeat's own record of the entry's last run)."""
    try:
        meta = server.client.hget(RECOVER_KEY, "meta")
    except redis.RedisError:
        return False
    last = RedBeatSchedulerEntry.decode_meta(meta)["last_run_at"] if meta else None
    return last is not None and last > moment


def first_times(conditions: dict[str, Callable[[], object]], since: float, timeout: float) -> dict[str, float]:
    """Seconds from ``since`` until each condition first held, watching all of them at once."""
    found: dict[str, float] = {}

    def all_held() -> bool:
        for name, condition in conditions.items():
            if name not in found and condition():
                found[name] = time.monotonic() - since
        return len(found) == len(conditions)

    wait_until(all_held, timeout, "; ".join(conditions))
    return found


@pytest.mark.parametrize(
    ("append_only", "stop_with"),
    [(False, signal.SIGKILL), (True, signal.SIGTERM)],
    ids=["without-data", "with-append-only-file"],
)
def test_worker_and_beat_carry_on_by_themselves_when_redis_restarts(
    append_only, stop_with, sessions, make_tenant, redis_server, start_worker, start_beat
):
    server = redis_server(append_only)
    busy = tenant_with_due(sessions, make_tenant(), shard=8, count=60)
    later = tenant_with_due(sessions, make_tenant(), shard=9, count=1)
    with MessageBirdEmulator(access_key=ACCESS_KEY, latency=0.4) as gateway:
        env = {
            "REDIS_URL": server.url, "MESSAGEBIRD_ENDPOINT": gateway.url, **FAST,
            "SEND_BATCH_SIZE": "10", "MAX_BATCHES_PER_TENANT": "2",
        }  # fmt: skip
        worker = start_worker("--concurrency", "2", **env)
        beat = start_beat(**env)
        wait_until(lambda: beat.holds(server), 30, "beat to lead")
        queue = CeleryReminderQueue(create_app(worker.settings))
        sweep_tenant(sql_unit_of_work(sessions), busy.slug, queue, worker.settings)
        wait_until(lambda: len(accepted_for(gateway, sessions, busy.id)) >= 10, 30, "batches to be in flight")

        server.stop(stop_with)
        time.sleep(2)
        back = server.start()
        back_at = dt.datetime.now(dt.UTC)
        # Published once Redis answers: sent only if the worker consumes again.
        sweep_tenant(
            sql_unit_of_work(sessions), later.slug, CeleryReminderQueue(create_app(worker.settings)), worker.settings
        )
        took = first_times(
            {
                "first SMS": lambda: accepted_for(gateway, sessions, later.id),
                "beat holds the lock": lambda: beat.holds(server),
                "beat sends its entries": lambda: recover_ran_after(server, back_at),
                "all sent": lambda: {row.status for row in rows(sessions, busy.id)} == {"sent"},
            },
            back,
            60,
        )
        references = Counter(accepted_for(gateway, sessions, busy.id))

    kind = "with its append-only file" if append_only else "without its data"
    print(
        f"\nRedis restarted {kind} (down 2 s), seconds after it answered: a reminder published then was sent "
        f"after {took['first SMS']:.2f}; beat held its lock after {took['beat holds the lock']:.2f} and sent its "
        f"recovery tick after {took['beat sends its entries']:.2f}; the 60 reminders in flight or queued at the "
        f"stop were all sent after {took['all sent']:.1f}"
    )
    assert worker.process.poll() is None and beat.process.poll() is None, "nothing restarted them"
    assert [ref for ref, n in references.items() if n > 1] == [], "a customer was texted twice"
    assert len(references) == 60
    assert beat.text().count("beat: Redis unreachable") == 1, "one warning per outage"
    if append_only:
        assert "this beat still holds the lock: leading on" in beat.text()


LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): \w+/MainProcess\] (.*)$", re.M)
# A beat logs one of these whenever it starts (or goes on) leading, and this before each entry it sends.
LEADS = ("beat: Acquired lock", "this beat still holds the lock: leading on")
SENDS = "Scheduler: Sending due task"


def events(beat: Beat) -> list[tuple[dt.datetime, str, Beat]]:
    """(time, "leads" or "sends", beat) from the beat's log; the beats' logs share one clock."""
    found = []
    for stamp, message in LINE.findall(beat.text()):
        at = dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=dt.UTC)
        if message.startswith(SENDS):
            found.append((at, "sends", beat))
        elif any(mark in message for mark in LEADS):
            found.append((at, "leads", beat))
    return found


def senders_out_of_turn(*beats: Beat) -> list[tuple[dt.datetime, str, Beat]]:
    """Entries sent by a beat while another was the last to take the lead: what two leaders at once
    would produce. In time order, every send must come from the beat that most recently took over."""
    current, wrong = None, []
    for at, what, beat in sorted((e for b in beats for e in events(b)), key=lambda e: e[0]):
        if what == "leads":
            current = beat
        elif beat is not current:
            wrong.append((at, what, beat))
    return wrong


def test_two_beats_never_lead_at_once_across_a_redis_restart_without_data(redis_server, start_beat):
    server = redis_server(append_only=False)
    env = {"REDIS_URL": server.url, **FAST}
    first = start_beat(**env)
    wait_until(lambda: first.holds(server), 30, "the first beat to lead")
    second = start_beat(**env)
    wait_until(lambda: "Acquiring lock" in second.text(), 30, "the second beat to stand by")

    holders: list[str | None] = []
    server.stop(signal.SIGKILL)
    time.sleep(1)
    back = server.start()
    back_at = dt.datetime.now(dt.UTC)
    leader = wait_until(lambda: next((b for b in (first, second) if b.holds(server)), None), 30, "a beat to lead")
    leads = time.monotonic() - back
    wait_until(lambda: recover_ran_after(server, back_at), 30, "the leader to send its recovery tick")
    for _ in range(LOCK_TIMEOUT + 1):  # longer than a lock timeout, once a second
        holders.append(server.client.get(LOCK_KEY))
        time.sleep(1)

    print(f"\ntwo beats, Redis restarted without its data: one of them led again {leads:.2f} s after it answered")
    assert first.process.poll() is None and second.process.poll() is None
    assert len(set(holders)) == 1 and holders[0] is not None and leader.holds(server), "one leader, which stays"
    assert sum(what == "sends" for b in (first, second) for _, what, _ in events(b)) > 0
    assert senders_out_of_turn(first, second) == [], "a beat sent after another took the lead"


def test_a_dead_leaders_lock_restored_from_the_append_only_file_holds_up_the_standby_only_until_it_expires(
    redis_server, start_beat
):
    server = redis_server(append_only=True)
    env = {"REDIS_URL": server.url, **FAST}
    leader = start_beat(**env)
    wait_until(lambda: leader.holds(server), 30, "the first beat to lead")
    standby = start_beat(**env)
    wait_until(lambda: "Acquiring lock" in standby.text(), 30, "the second beat to stand by")

    os.kill(leader.process.pid, signal.SIGKILL)  # the leader dies with its lock in Redis ...
    died = time.monotonic()
    server.stop(signal.SIGTERM)  # ... and Redis restarts, restoring that lock from its file
    back = server.start()
    assert server.client.get(LOCK_KEY) is not None, "the dead leader's lock came back"
    # The lease runs out at most a lock timeout after the leader's last renewal; the standby polls
    # every beat interval (1 s).
    wait_until(lambda: standby.holds(server), LOCK_TIMEOUT + 5, "the standby to take over")
    took_over = time.monotonic()
    print(
        f"\ndead leader's lock restored by the append-only file: the standby leads {took_over - died:.2f} s after "
        f"the leader died ({took_over - back:.2f} s after Redis answered; lock timeout {LOCK_TIMEOUT} s)"
    )
    assert standby.process.poll() is None


def test_beat_exits_non_zero_with_one_line_when_redis_comes_back_with_another_password(redis_server, start_beat):
    server = redis_server(append_only=False)
    beat = start_beat(REDIS_URL=server.url, **FAST)
    wait_until(lambda: beat.holds(server), 30, "beat to lead")
    server.stop(signal.SIGTERM)
    server.start(password="rotated-elsewhere")
    # Not an outage to wait out: beat read its password once, so only a restart with the new one helps.
    wait_until(lambda: beat.process.poll() is not None, 30, "beat to exit")
    assert beat.process.returncode == 2
    assert "rejected the credentials" in beat.text().splitlines()[-1]
    assert REDIS_PASSWORD not in beat.text() and "rotated-elsewhere" not in beat.text()


def test_tasks_lost_with_redis_data_are_published_again_at_the_next_recovery_tick(
    sessions, make_tenant, redis_server, start_worker, start_beat
):
    server = redis_server(False)
    tenant = tenant_with_due(sessions, make_tenant(), shard=10, count=120)
    with MessageBirdEmulator(access_key=ACCESS_KEY) as gateway:
        # The default REQUEUE_AFTER_SECONDS: only noticing the loss can bring the lost tasks back soon.
        env = {"REDIS_URL": server.url, "MESSAGEBIRD_ENDPOINT": gateway.url, **FAST, "REQUEUE_AFTER_SECONDS": "600"}
        # Only the control queue for now, so the tenant's tasks wait in Redis as in a busy shard.
        control = start_worker("--queues", constants.CONTROL_QUEUE, **env)
        start_beat(**env)
        wait_until(lambda: server.client.exists(constants.BROKER_MARKER_KEY), 30, "the first recovery tick")
        queue = CeleryReminderQueue(create_app(control.settings))
        assert sweep_tenant(sql_unit_of_work(sessions), tenant.slug, queue, control.settings).enqueued > 0
        assert server.client.llen(constants.shard_queue(10)) > 0

        server.stop(signal.SIGKILL)  # back empty: the queued tasks are gone
        back = server.start()
        start_worker("--shards", "10", **env)
        took = first_times(
            {"all sent": lambda: {row.status for row in rows(sessions, tenant.id)} == {"sent"}}, back, 60
        )
        references = accepted_for(gateway, sessions, tenant.id)

    print(f"\nRedis lost its queued tasks: all 120 reminders sent {took['all sent']:.1f} s after it answered again")
    assert len(references) == len(set(references)) == 120
    assert "Redis lost its queued tasks" in control.text()


def test_a_task_finishing_after_redis_died_under_it_does_not_stop_the_worker(
    sessions, make_tenant, redis_server, start_worker
):
    server = redis_server(False)
    first = tenant_with_due(sessions, make_tenant(), shard=11, count=5)
    second = tenant_with_due(sessions, make_tenant(), shard=11, count=1)
    with MessageBirdEmulator(access_key=ACCESS_KEY, latency=3.0) as gateway:
        env = {
            "REDIS_URL": server.url, "MESSAGEBIRD_ENDPOINT": gateway.url, **FAST,
            "MESSAGEBIRD_READ_TIMEOUT": "10", "STALE_SENDING_SECONDS": "60",
        }  # fmt: skip
        worker = start_worker("--shards", "11", **env)
        sweep_tenant(
            sql_unit_of_work(sessions), first.slug, CeleryReminderQueue(create_app(worker.settings)), worker.settings
        )
        wait_until(lambda: all(r.send_started_at for r in rows(sessions, first.id)), 30, "the batch to be sending")

        server.stop(signal.SIGKILL)  # the task is running; its ack will find the connection gone
        server.start()
        wait_until(lambda: {r.status for r in rows(sessions, first.id)} == {"sent"}, 30, "the batch to finish")
        sweep_tenant(
            sql_unit_of_work(sessions), second.slug, CeleryReminderQueue(create_app(worker.settings)), worker.settings
        )
        wait_until(lambda: accepted_for(gateway, sessions, second.id), 30, "the next reminder to be sent")

    assert worker.process.poll() is None, "the worker stopped"
    assert "Unrecoverable error" not in worker.text()
