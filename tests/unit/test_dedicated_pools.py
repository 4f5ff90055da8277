"""``tenant-worker pools render``: the rendered compose override and Kubernetes objects pass the same
checks as the hand-written pools (tests/unit/test_pool_manifests.py), for the dedicated tenants only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tenant_worker import cli, constants
from tenant_worker.services import pool_render
from tests.unit.test_pool_manifests import ROOT, mounted_secret, pod_environment, pool_queues

SLUGS = ["big-co", "acme"]


def rendered() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    files = pool_render.render(SLUGS)
    compose = yaml.safe_load(files[pool_render.COMPOSE_FILE])
    docs = [d for d in yaml.safe_load_all(files[pool_render.K8S_FILE]) if d]
    return compose, docs


def test_each_dedicated_tenant_gets_a_compose_service_on_exactly_its_queue() -> None:
    compose, _ = rendered()
    base = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    pools = {name: pool_queues(s["command"]) for name, s in compose["services"].items()}
    assert pools == {f"worker-tenant-{s}": [constants.dedicated_queue(s)] for s in SLUGS}
    for service in compose["services"].values():
        assert service["extends"]["file"] == "docker-compose.yml"
        assert base[service["extends"]["service"]]["command"][0] == "worker"


def test_each_dedicated_pool_is_a_deployment_scaled_on_its_own_list() -> None:
    _, docs = rendered()
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    scaled = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ScaledObject"}
    assert set(deployments) == set(scaled) == {f"tenant-worker-worker-tenant-{s}" for s in SLUGS}
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        queues = pool_queues(container["args"])
        [trigger] = scaled[name]["spec"]["triggers"]
        assert [trigger["metadata"]["listName"]] == queues
        assert trigger["authenticationRef"] == {"name": "tenant-worker-redis"}
        assert scaled[name]["spec"]["scaleTargetRef"] == {"name": name}
        assert container["ports"] == [{"name": "metrics", "containerPort": 9100}]
        assert pod["terminationGracePeriodSeconds"] > 300  # longer than task_time_limit
        env = pod_environment(pod)
        assert mounted_secret(pod, env["REDIS_PASSWORD_FILE"]) == ("tenant-worker-redis", "password")
        assert mounted_secret(pod, env["DATABASE_PASSWORD_FILE"]) == ("tenant-worker-database", "password")
        assert pod["securityContext"]["runAsNonRoot"] is True
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"] == labels
        for probe in ("livenessProbe", "readinessProbe"):
            command = container[probe]["exec"]["command"]
            assert command[0] == "tenant-worker"
            assert cli.build_parser().parse_args(command[1:]).kind == "worker"


def test_no_dedicated_tenant_renders_empty_files(tmp_path: Path) -> None:
    files = pool_render.render([])
    assert yaml.safe_load(files[pool_render.COMPOSE_FILE]) == {"services": {}}
    assert [d for d in yaml.safe_load_all(files[pool_render.K8S_FILE]) if d] == []


def test_only_tenants_on_their_own_dedicated_queue_count() -> None:
    queues = {
        constants.shard_queue(3): ["small"],
        constants.dedicated_queue("big-co"): ["big-co"],
        constants.dedicated_queue("acme"): ["acme"],
    }
    assert pool_render.dedicated_slugs(queues) == ["acme", "big-co"]
