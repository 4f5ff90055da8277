"""Flower and the metrics ports in docker-compose.yml and infra/k8s: the seed's command, credentials only
from a secret, and a metrics port on every worker and beat pod that the PodMonitor scrapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tenant_worker.config import load_settings
from tests.unit.test_pool_manifests import k8s_documents, of_kind

ROOT = Path(__file__).resolve().parents[2]
FLOWER_COMMAND = "celery -A tenant_worker.celery_app flower"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_compose_runs_flower_as_the_seed_writes_it_with_basic_auth_from_a_secret() -> None:
    flower = compose()["services"]["flower"]
    [command] = flower["command"]
    assert FLOWER_COMMAND in command
    assert 'FLOWER_BASIC_AUTH="$$(cat /run/secrets/flower_basic_auth)"' in command
    assert "flower_basic_auth" in flower["secrets"] and "flower_basic_auth" in compose()["secrets"]
    assert "FLOWER_BASIC_AUTH" not in flower.get("environment", {})
    assert all(port.startswith("127.0.0.1:") for port in flower["ports"])
    assert {"redis_password", "postgres_password"} <= set(flower["secrets"])


def test_compose_workers_and_beat_serve_metrics_inside_the_compose_network() -> None:
    for name in ("worker-shards-a", "worker-shards-b", "worker-control", "beat"):
        environment = compose()["services"][name]["environment"]
        metrics = {k: v for k, v in environment.items() if k.startswith("METRICS_")}
        settings = load_settings(metrics)
        assert (settings.metrics_host, settings.metrics_port) == ("0.0.0.0", 9100), name
        assert "ports" not in compose()["services"][name], "scaled workers must not clash on a host port"


def test_kubernetes_runs_flower_with_its_secret_behind_a_cluster_service() -> None:
    deployment = of_kind("Deployment")["tenant-worker-flower"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert " ".join(container["command"] + container["args"]).startswith(FLOWER_COMMAND)
    [auth] = [e for e in container["env"] if e["name"] == "FLOWER_BASIC_AUTH"]
    assert "value" not in auth and auth["valueFrom"]["secretKeyRef"]["name"] == "tenant-worker-flower"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthcheck"
    service = of_kind("Service")["tenant-worker-flower"]
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"] == deployment["spec"]["template"]["metadata"]["labels"]


def test_every_worker_and_beat_pod_has_the_metrics_port_the_pod_monitor_scrapes() -> None:
    [config] = [d for d in k8s_documents() if d["kind"] == "ConfigMap"]
    port = int(config["data"]["METRICS_PORT"])
    [monitor] = of_kind("PodMonitor").values()
    assert "metrics" in {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]}
    for name, deployment in of_kind("Deployment").items():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        if container["args"][0] in ("worker", "beat"):
            assert {"name": "metrics", "containerPort": port} in container.get("ports", []), name
