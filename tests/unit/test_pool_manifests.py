"""Worker pools in docker-compose.yml and infra/k8s: every queue consumed by exactly one pool, commands
the CLI and Celery accept, KEDA triggers on exactly the pool's lists, the migration Job and beat as in
compose, and every pod's Redis and database passwords from Secrets mounted as files.

The queues a pool consumes are worked out with the CLI's own argument split and the domain's shard
parser, so a compose or manifest command that the CLI would read differently fails here.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from celery import Celery
from celery.bin.base import CLIContext
from celery.bin.worker import worker as celery_worker
from sqlalchemy.engine import make_url

from tenant_worker import cli, constants
from tenant_worker.adapters.db import normalize_database_url
from tenant_worker.config import Settings, load_settings
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


def k8s_pods() -> dict[str, dict[str, Any]]:
    """The pod spec of every Deployment and Job, by name."""
    return {name: d["spec"]["template"]["spec"] for kind in ("Deployment", "Job") for name, d in of_kind(kind).items()}


def command_of(pod: dict[str, Any]) -> list[str]:
    [container] = pod["containers"]
    return list(container["args"])


def k8s_pools() -> dict[str, list[str]]:
    """Queues of every worker Deployment (beat's Deployment is not a pool)."""
    pods = {name: d["spec"]["template"]["spec"] for name, d in of_kind("Deployment").items()}
    return {name: pool_queues(command_of(pod)) for name, pod in pods.items() if command_of(pod)[0] == "worker"}


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


def mounted_secret(pod: dict[str, Any], path: str) -> tuple[str, str]:
    """The ``(Secret, key)`` whose value the worker container sees as the file at ``path``."""
    [container] = pod["containers"]
    [mount] = [m for m in container["volumeMounts"] if path.startswith(m["mountPath"] + "/")]
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    relative = PurePosixPath(path).relative_to(mount["mountPath"]).as_posix()
    items = volume["secret"].get("items")
    [key] = [i["key"] for i in items if i["path"] == relative] if items else [relative]
    return volume["secret"]["secretName"], key


def pod_environment(pod: dict[str, Any]) -> dict[str, str]:
    """The worker's environment from the ConfigMap and literal values (Secret references left out)."""
    [container] = pod["containers"]
    config_maps = of_kind("ConfigMap")
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]]["data"])
    env.update({e["name"]: e["value"] for e in container["env"] if "value" in e})
    return env


def test_kubernetes_runs_the_migration_and_beat_like_compose() -> None:
    services: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    pods = k8s_pods()
    assert command_of(pods["tenant-worker-migrate"]) == services["migrate"]["command"] == ["db", "upgrade"]
    assert pods["tenant-worker-migrate"]["restartPolicy"] == "Never"
    assert command_of(pods["tenant-worker-beat"]) == services["beat"]["command"]
    commands = [command_of(pod)[0] for pod in pods.values()]
    assert commands.count("beat") == 1 and commands.count("db") == 1, commands
    assert set(k8s_pools()) == {name for name, pod in pods.items() if command_of(pod)[0] == "worker"}


def test_workers_read_the_redis_password_from_the_mounted_secret() -> None:
    for name, pod in k8s_pods().items():
        path = pod_environment(pod)["REDIS_PASSWORD_FILE"]
        assert mounted_secret(pod, path) == ("tenant-worker-redis", "password"), name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
    for name in k8s_pools():
        # Longer than task_time_limit (300 s): a warm shutdown finishes the longest batch.
        assert k8s_pods()[name]["terminationGracePeriodSeconds"] > 300, name


def test_worker_and_beat_pods_probe_their_own_heartbeat_without_a_broadcast_ping() -> None:
    pods = k8s_pods()
    for name in [*k8s_pools(), "tenant-worker-beat"]:
        [container] = pods[name]["containers"]
        kind = command_of(pods[name])[0]
        for probe, ready in (("livenessProbe", False), ("readinessProbe", True)):
            command = container[probe]["exec"]["command"]
            assert command[0] == "tenant-worker" and "inspect" not in command, name
            args = cli.build_parser().parse_args(command[1:])
            assert (args.command, args.kind, args.ready) == ("probe", kind, ready), name
            assert container[probe]["timeoutSeconds"] >= 5, name


def test_worker_pools_roll_without_a_gap() -> None:
    for name, deployment in of_kind("Deployment").items():
        if name in k8s_pools():
            rolling = deployment["spec"]["strategy"]["rollingUpdate"]
            assert (rolling["maxSurge"], rolling["maxUnavailable"]) == (1, 0), name


def test_workers_read_the_database_password_from_the_mounted_secret() -> None:
    for name, pod in k8s_pods().items():
        env = pod_environment(pod)
        assert mounted_secret(pod, env["DATABASE_PASSWORD_FILE"]) == ("tenant-worker-database", "password"), name
        url = urlsplit(env["DATABASE_URL"])
        assert url.username and url.password is None and "password" not in url.query, name
        [container] = pod["containers"]
        from_secrets = {e["name"] for e in container["env"] if "valueFrom" in e}
        assert not {"DATABASE_URL", "DATABASE_PASSWORD"} & from_secrets, f"{name}: the password belongs in the file"
    text = "\n".join(p.read_text() for p in (ROOT / "infra" / "k8s").glob("*.yaml"))
    assert "DATABASE_PASSWORD:" not in text and "key: url" not in text


def test_worker_environment_yields_settings_with_both_passwords(tmp_path: Path) -> None:
    redis_secret, database_secret = tmp_path / "redis", tmp_path / "database"
    redis_secret.write_text("r3d!s pass\n", encoding="utf-8")
    database_secret.write_text("pg/pass+word= @:%#?\n", encoding="utf-8")
    for name, pod in k8s_pods().items():
        env = pod_environment(pod)
        env.update(
            REDIS_PASSWORD_FILE=str(redis_secret),
            DATABASE_PASSWORD_FILE=str(database_secret),
            MESSAGEBIRD_ACCESS_KEY="from-its-secret",
        )
        if "ADMIN_API_KEYS_FILE" in env:
            admin_keys = tmp_path / "admin_keys"
            admin_keys.write_text("k" * 64 + "\n", encoding="utf-8")
            env["ADMIN_API_KEYS_FILE"] = str(admin_keys)

        settings = load_settings(env)

        settings.require_credentials()
        url = make_url(normalize_database_url(settings.database_url))
        assert (url.username, url.password, url.database) == ("tenant_worker", "pg/pass+word= @:%#?", "tenant_worker")
        assert settings.production, name


def api_pod() -> dict[str, Any]:
    pod: dict[str, Any] = k8s_pods()["tenant-worker-api"]
    return pod


def test_kubernetes_runs_the_api_like_compose_with_its_probes_on_its_port() -> None:
    services: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    [container] = api_pod()["containers"]
    assert container["args"] == services["api"]["command"]
    args = cli.build_parser().parse_args(container["args"])
    [port] = container["ports"]
    assert port["containerPort"] == args.port and args.host == "0.0.0.0"
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}


def test_the_api_service_selects_the_api_pods_and_targets_their_port() -> None:
    service = of_kind("Service")["tenant-worker-api"]
    deployment = of_kind("Deployment")["tenant-worker-api"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    [container] = api_pod()["containers"]
    assert [p["targetPort"] for p in service["spec"]["ports"]] == [container["ports"][0]["name"]]


def test_the_api_reads_admin_keys_from_a_mounted_secret() -> None:
    pod = api_pod()
    env = pod_environment(pod)
    assert mounted_secret(pod, env["ADMIN_API_KEYS_FILE"]) == ("tenant-worker-api-admin", "keys")
    [container] = pod["containers"]
    assert "ADMIN_API_KEYS" not in {e["name"] for e in container["env"]}
    assert "MESSAGEBIRD_ACCESS_KEY" not in {e["name"] for e in container["env"]}, "the API sends no SMS"
