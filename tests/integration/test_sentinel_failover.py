"""Redis Sentinel failover under a running system: the master dies mid-run, the sentinels promote the
replica, and the worker and beat carry on through the sentinels with no duplicate and no lost SMS.

The test starts its own password-protected master and replica (``--replicaof``, ``--masterauth``)
and three ``redis-server --sentinel`` processes with a password of their own, with short
``down-after-milliseconds`` and ``failover-timeout`` so a failover takes seconds, all on free ports.
The worker and beat are real ``tenant-worker`` processes configured only through ``REDIS_SENTINELS``,
``REDIS_SENTINEL_MASTER``, ``REDIS_PASSWORD`` and ``REDIS_SENTINEL_PASSWORD_FILE``; ``REDIS_HOST``
and ``REDIS_PORT`` name a port nothing listens on, so a client that ignored Sentinel would fail.
Run with ``-s`` to see the times measured.
"""

from __future__ import annotations

import datetime as dt
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from redis.sentinel import Sentinel

from tenant_worker.adapters.celery_publisher import CeleryReminderQueue
from tenant_worker.adapters.redis_check import check_redis
from tenant_worker.adapters.sql_storage import sql_unit_of_work
from tenant_worker.celery_app import create_app
from tenant_worker.config import ConfigurationError, build_redis_url
from tenant_worker.errors import ServiceUnavailable
from tenant_worker.redis_settings import SentinelSettings
from tenant_worker.services.sweep import sweep_tenant
from tenant_worker_dev.emulators.messagebird import MessageBirdEmulator
from tests.conftest import ACCESS_KEY, BIN, REDIS_PASSWORD, free_port, wait_until
from tests.integration.test_redis_restart import FAST, first_times, recover_ran_after
from tests.integration.test_self_healing import accepted_for, rows, tenant_with_due

MASTER = "tw-master"
SENTINEL_PASSWORD = "s3nt#nel @pass:/%"


def _quoted(text: str) -> str:
    """A redis.conf argument in double quotes (the passwords contain spaces and ``#``)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class SentinelCluster:
    """A master, its replica and three sentinels watching them; ``client`` talks to whichever server
    the sentinels name as master (as every tenant-worker client does)."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is required on PATH (apt-get install redis-server)")
        self.binary, self.workdir = binary, workdir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.master_port, self.replica_port = free_port(), free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self._start_redis("master", self.master_port)
        self._start_redis("replica", self.replica_port, "--replicaof", "127.0.0.1", str(self.master_port))
        self.replica = redis.Redis(port=self.replica_port, password=REDIS_PASSWORD, socket_timeout=1)
        self.sentinels = [
            redis.Redis(port=port, password=SENTINEL_PASSWORD, socket_timeout=1, decode_responses=True)
            for port in self.sentinel_ports
        ]
        manager = Sentinel([("127.0.0.1", port) for port in self.sentinel_ports],
                           sentinel_kwargs={"password": SENTINEL_PASSWORD, "socket_timeout": 1})  # fmt: skip
        self.client = manager.master_for(MASTER, password=REDIS_PASSWORD, socket_timeout=2, decode_responses=True)

    def _start_redis(self, name: str, port: int, *args: str) -> None:
        (self.workdir / name).mkdir(parents=True)
        self.processes[name] = subprocess.Popen(
            [self.binary, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", REDIS_PASSWORD,
             "--masterauth", REDIS_PASSWORD, "--save", "", "--appendonly", "no", "--dir", str(self.workdir / name),
             *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def start_sentinels(self) -> None:
        """Start the sentinels once the replica is in sync: a sentinel learns of replicas from the
        master's INFO, which it reads at once and then every 10 s."""
        wait_until(self.replica_in_sync, 30, "the replica to sync with the master")
        for number, port in enumerate(self.sentinel_ports):
            self._start_sentinel(number, port)

    def replica_in_sync(self) -> bool:
        try:
            return bool(self.replica.info("replication")["master_link_status"] == "up")
        except redis.RedisError:
            return False

    def _start_sentinel(self, number: int, port: int) -> None:
        config = self.workdir / f"sentinel-{number}.conf"  # sentinels rewrite their file: one each
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {self.workdir}\n"
            f"requirepass {_quoted(SENTINEL_PASSWORD)}\nsentinel sentinel-pass {_quoted(SENTINEL_PASSWORD)}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {self.master_port} 2\n"
            f"sentinel auth-pass {MASTER} {_quoted(REDIS_PASSWORD)}\n"
            f"sentinel down-after-milliseconds {MASTER} 1000\nsentinel failover-timeout {MASTER} 3000\n"
        )
        self.processes[f"sentinel-{number}"] = subprocess.Popen(
            [self.binary, str(config), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )

    def master_address(self) -> tuple[str, int] | None:
        """The master's address by the first sentinel that answers (SENTINEL get-master-addr-by-name)."""
        for sentinel in self.sentinels:
            try:
                address = sentinel.execute_command("SENTINEL", "get-master-addr-by-name", MASTER)
            except redis.RedisError:
                continue
            if address:
                return str(address[0]), int(address[1])
        return None

    def ready(self) -> bool:
        """Every sentinel sees the master up, the replica and the two other sentinels, and the replica
        is in sync: a failover can happen."""
        try:
            for sentinel in self.sentinels:
                state = sentinel.sentinel_master(MASTER)
                if state["num-slaves"] != 1 or state["num-other-sentinels"] != 2 or not state["is_master"]:
                    return False
        except redis.RedisError:
            return False
        return self.replica_in_sync()

    def kill_master(self) -> None:
        self.processes["master"].send_signal(signal.SIGKILL)
        self.processes["master"].wait(10)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(10)


@pytest.fixture
def sentinel_cluster(tmp_path: Path) -> Iterator[SentinelCluster]:
    cluster = SentinelCluster(tmp_path / "redis")
    try:
        cluster.start_sentinels()
        wait_until(cluster.ready, 30, "the sentinels to see the master, the replica and each other")
        yield cluster
    finally:
        cluster.stop()


def sentinel_env(cluster: SentinelCluster, password_file: Path) -> dict[str, str]:
    """The settings of a process that reaches Redis only through the sentinels."""
    password_file.write_text(SENTINEL_PASSWORD + "\n")
    return {
        "REDIS_URL": "", "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(free_port()), "REDIS_DB": "0",
        "REDIS_PASSWORD": REDIS_PASSWORD, "REDIS_SENTINEL_MASTER": MASTER,
        "REDIS_SENTINELS": ",".join(f"127.0.0.1:{port}" for port in cluster.sentinel_ports),
        "REDIS_SENTINEL_PASSWORD_FILE": str(password_file),
    }  # fmt: skip


def test_commands_reach_redis_through_the_sentinels_and_name_the_setting_to_fix(sentinel_cluster, worker_env, tmp_path):
    cluster = sentinel_cluster
    url = build_redis_url("127.0.0.1", free_port(), 0, REDIS_PASSWORD)  # only its password and db are used
    nodes = tuple(("127.0.0.1", port) for port in cluster.sentinel_ports)
    check_redis(url, SentinelSettings(nodes, MASTER, SENTINEL_PASSWORD))
    # One sentinel: redis-py retries each with a backoff of seconds before giving up on it.
    with pytest.raises(ConfigurationError, match=r"sentinels .* rejected the credentials") as wrong:
        check_redis(url, SentinelSettings(nodes[:1], MASTER, "not-the-sentinel-password"))
    with pytest.raises(ServiceUnavailable, match="no sentinel answered with a master") as unknown:
        check_redis(url, SentinelSettings(nodes, "no-such-master", SENTINEL_PASSWORD))
    for error in (wrong, unknown):
        assert REDIS_PASSWORD not in str(error.value) and SENTINEL_PASSWORD not in str(error.value)

    env = {**worker_env, **sentinel_env(cluster, tmp_path / "sentinel-password")}
    queues = subprocess.run([str(BIN / "tenant-worker"), "queues", "--json"], env=env, capture_output=True, text=True)
    assert queues.returncode == 0, queues.stderr
    assert '"queues"' in queues.stdout


def test_worker_and_beat_carry_on_through_a_sentinel_failover_with_no_duplicate_and_no_lost_sms(
    sessions, make_tenant, sentinel_cluster, start_worker, start_beat, tmp_path
):
    cluster = sentinel_cluster
    started = time.monotonic()
    busy = tenant_with_due(sessions, make_tenant(), shard=12, count=60)
    later = tenant_with_due(sessions, make_tenant(), shard=13, count=5)
    with MessageBirdEmulator(access_key=ACCESS_KEY, latency=0.3) as gateway:
        env = {
            **sentinel_env(cluster, tmp_path / "sentinel-password"),
            "MESSAGEBIRD_ENDPOINT": gateway.url, **FAST, "SEND_BATCH_SIZE": "10", "MAX_BATCHES_PER_TENANT": "2",
        }  # fmt: skip
        worker = start_worker("--concurrency", "2", **env)
        beat = start_beat(**env)
        wait_until(lambda: beat.holds(cluster), 30, "beat to lead")
        settings = worker.settings
        assert settings.redis_sentinel is not None and settings.redis_sentinel.password == SENTINEL_PASSWORD
        sweep_tenant(sql_unit_of_work(sessions), busy.slug, CeleryReminderQueue(create_app(settings)), settings)
        wait_until(lambda: len(accepted_for(gateway, sessions, busy.id)) >= 10, 30, "batches to be in flight")

        sent_before = len(accepted_for(gateway, sessions, busy.id))
        old_master = cluster.master_address()
        cluster.kill_master()
        killed = time.monotonic()
        promoted = wait_until(
            lambda: (address := cluster.master_address()) != old_master and address,
            30,
            "the sentinels to promote the replica",
        )
        promoted_after = time.monotonic() - killed
        promoted_at = dt.datetime.now(dt.UTC)
        # Published once the replica is master: sent only if the worker consumes from the new master.
        sweep_tenant(sql_unit_of_work(sessions), later.slug, CeleryReminderQueue(create_app(settings)), settings)
        took = first_times(
            {
                "first SMS": lambda: accepted_for(gateway, sessions, later.id),
                "beat holds the lock": lambda: beat.holds(cluster),
                "beat sends its entries": lambda: recover_ran_after(cluster, promoted_at),
                "all sent": lambda: (
                    {row.status for row in rows(sessions, busy.id) + rows(sessions, later.id)} == {"sent"}
                ),
            },
            killed,
            45,
        )
        references = Counter(accepted_for(gateway, sessions, busy.id) + accepted_for(gateway, sessions, later.id))

    print(
        f"\nSentinel failover: the replica was promoted {promoted_after:.1f} s after the master was killed; "
        f"seconds after the kill: beat held its lock after {took['beat holds the lock']:.1f} and sent its "
        f"recovery tick after {took['beat sends its entries']:.1f}, a reminder swept after the failover was "
        f"sent after {took['first SMS']:.1f}, all 65 were sent after {took['all sent']:.1f}; "
        f"test {time.monotonic() - started:.1f} s"
    )
    assert sent_before < 60, "the master was killed mid-run"
    assert promoted == ("127.0.0.1", cluster.replica_port)
    # The lock reached the replica before the kill (replication is fast here): beat leads on. Had it
    # not, beat would take the free lock again; either way it sent its entries after the failover.
    assert "this beat still holds the lock: leading on" in beat.text() or beat.text().count("Acquired lock") == 2
    assert worker.process.poll() is None and beat.process.poll() is None, "nothing restarted them"
    assert [ref for ref, n in references.items() if n > 1] == [], "a customer was texted twice"
    assert len(references) == 65, "a reminder was lost"
    for text in (worker.text(), beat.text()):
        for secret_form in (REDIS_PASSWORD, SENTINEL_PASSWORD, quote(REDIS_PASSWORD, safe="")):
            assert secret_form not in text
