"""Worker pools in docker-compose.yml and infra/k8s: every queue consumed by exactly one pool, commands
the CLI and Celery accept, KEDA triggers on exactly the pool's lists, the Redis password from a Secret.

The queues a pool consumes are worked out with the CLI's own argument split and the domain's shard
parser, so a compose or manifest command that the CLI would read differently fails here.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from celery import Celery
from celery.bin.base import CLIContext
from celery.bin.worker import worker as celery_worker

from tenant_worker import cli, constants
from tenant_worker.config import Settings
from tenant_worker.domain.shards import all_shard_queues, parse_shards

ROOT = Path(__file__).resolve().parents[2]
SHARD_COUNT = Settings(redis_url="redis://localhost:6379/0").shard_count
EVERY_QUEUE = {*all_shard_queues(SHARD_COUNT), *constants.CONTROL_POOL_QUEUES}


def pool_queues(command: list[str]) -> list[str]:
    """The queues ``tenant-worker <command>`` consumes, and a check that Celery takes the rest."""
    assert command[0] == "worker", command
    selection, rest = cli.worker_selection(command[1:])
    obj = CLIContext(app=Celery(set_as_current=False), no_color=True, workdir=None)
    assert celery_worker.make_context("worker", list(rest), obj=obj).args == [], rest
    assert selection.shards or selection.queues or selection.tenant, "a pool must name its queues"
    queues = [constants.shard_queue(n) for n in parse_shards(selection.shards, SHARD_COUNT)] if selection.shards else []
    queues += [q for text in selection.queues for q in text.split(",")]
    queues += [constants.dedicated_queue(slug) for slug in selection.tenant]
    return queues


def compose_pools() -> dict[str, list[str]]:
    services: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    return {name: pool_queues(s["command"]) for name, s in services.items() if s.get("command", [""])[0] == "worker"}


def k8s_documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted((ROOT / "infra" / "k8s").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in k8s_documents() if d["kind"] == kind}


def k8s_pools() -> dict[str, list[str]]:
    pools = {}
    for name, deployment in of_kind("Deployment").items():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        pools[name] = pool_queues(container["args"])
    return pools


@pytest.mark.parametrize("pools", [compose_pools, k8s_pools], ids=["compose", "k8s"])
def test_every_queue_is_consumed_by_exactly_one_pool(pools: Any) -> None:
    consumed = Counter(q for queues in pools().values() for q in queues)
    assert set(consumed) == EVERY_QUEUE, set(consumed) ^ EVERY_QUEUE
    assert {q for q, n in consumed.items() if n > 1} == set()


def test_compose_and_kubernetes_define_the_same_pools() -> None:
    k8s = {name.removeprefix("tenant-worker-"): queues for name, queues in k8s_pools().items()}
    assert k8s == compose_pools()


def test_each_pool_scales_on_the_length_of_exactly_its_own_lists() -> None:
    scaled = of_kind("ScaledObject")
    pools = k8s_pools()
    assert {s["spec"]["scaleTargetRef"]["name"] for s in scaled.values()} == set(pools)
    for scaled_object in scaled.values():
        spec = scaled_object["spec"]
        triggers = spec["triggers"]
        assert {t["type"] for t in triggers} == {"redis"}
        assert sorted(t["metadata"]["listName"] for t in triggers) == sorted(pools[spec["scaleTargetRef"]["name"]])
        assert all(int(t["metadata"]["listLength"]) > 0 for t in triggers)
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]


def test_keda_reads_the_redis_password_from_a_secret_never_a_literal() -> None:
    auths = of_kind("TriggerAuthentication")
    for scaled_object in of_kind("ScaledObject").values():
        for trigger in scaled_object["spec"]["triggers"]:
            assert not {"password", "passwordFromEnv"} & set(trigger["metadata"])
            auth = auths[trigger["authenticationRef"]["name"]]
            [ref] = [r for r in auth["spec"]["secretTargetRef"] if r["parameter"] == "password"]
            assert ref["name"] == "tenant-worker-redis" and ref["key"] == "password"
    text = "\n".join(p.read_text() for p in (ROOT / "infra" / "k8s").glob("*.yaml"))
    assert "requirepass" not in text and "REDIS_PASSWORD:" not in text and "REDIS_URL" not in text


def test_workers_read_the_redis_password_from_the_mounted_secret() -> None:
    for deployment in of_kind("Deployment").values():
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        env = {e["name"]: e for e in container["env"]}
        path = env["REDIS_PASSWORD_FILE"]["value"]
        [mount] = [m for m in container["volumeMounts"] if path.startswith(m["mountPath"] + "/")]
        [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        assert volume["secret"]["secretName"] == "tenant-worker-redis"
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["terminationGracePeriodSeconds"] >= 300
