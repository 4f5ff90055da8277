"""Dedicated pools from the CLI: ``tenant move --dedicated`` and ``tenant create --dedicated`` warn
while no live worker consumes the tenant's queue (read from the workers' heartbeats), and ``pools
render`` writes its pool files."""

from __future__ import annotations

import subprocess

import redis
import yaml

from tenant_worker.adapters.heartbeat import RedisHeartbeats
from tenant_worker.services import pool_render
from tests.conftest import BIN, redis_db_url, unique_slug, wait_until


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(BIN / "tenant-worker"), *args], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result


def test_move_dedicated_warns_until_a_pool_consumes_the_queue_and_render_writes_the_pool(
    worker_env, redis_url, start_worker, tmp_path
):
    url = redis_db_url(redis_url, 14)
    redis.Redis.from_url(url).flushdb()
    env = {**worker_env, "REDIS_URL": url}
    slug = unique_slug("ded")
    cli(env, "tenant", "create", "--slug", slug, "--name", "N", "--timezone", "Europe/Amsterdam", "--originator", "Net")

    moved = cli(env, "tenant", "move", slug, "--dedicated")
    assert f"no live worker consumes reminders.tenant.{slug}" in moved.stderr

    cli(env, "pools", "render", "--out", str(tmp_path / "pools"))
    compose = yaml.safe_load((tmp_path / "pools" / pool_render.COMPOSE_FILE).read_text())
    assert compose["services"][f"worker-tenant-{slug}"]["command"][:3] == ["worker", "--tenant", slug]
    docs = list(yaml.safe_load_all((tmp_path / "pools" / pool_render.K8S_FILE).read_text()))
    names = {(d["kind"], d["metadata"]["name"]) for d in docs if d}
    pool = f"tenant-worker-worker-tenant-{slug}"
    assert {("Deployment", pool), ("ScaledObject", pool)} <= names

    start_worker("--tenant", slug, REDIS_URL=url, HEARTBEAT_FILE=str(tmp_path / "hb"))
    beats = RedisHeartbeats(redis.Redis.from_url(url))
    wait_until(lambda: any(f"reminders.tenant.{slug}" in b.queues for b in beats.live()), 10, "the pool's heartbeat")
    cli(env, "tenant", "move", slug, "--shard", "3")
    again = cli(env, "tenant", "move", slug, "--dedicated")
    assert "no live worker" not in again.stderr


def test_create_dedicated_warns_while_no_pool_consumes_the_queue(worker_env, redis_url):
    url = redis_db_url(redis_url, 14)
    env = {**worker_env, "REDIS_URL": url}
    slug = unique_slug("newded")
    created = cli(env, "tenant", "create", "--slug", slug, "--name", "N", "--timezone", "Europe/Amsterdam",
                  "--originator", "Net", "--dedicated")  # fmt: skip
    assert f"no live worker consumes reminders.tenant.{slug}" in created.stderr
