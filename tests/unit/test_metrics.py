"""The Prometheus adapter: bounded labels, the recorders entrypoints call, the timed gateway, the API's
``/metrics`` route, and the alert rules in infra/k8s naming only metrics that exist."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tenant_worker import constants
from tenant_worker.adapters import prometheus
from tenant_worker.adapters.prometheus_state import StateCollector, _Reading, queue_kind
from tenant_worker.api.app import create_app
from tenant_worker.bootstrap import bootstrap
from tenant_worker.config import Settings
from tenant_worker.domain.model import AccessCheck, OutboundSms, OutcomeKind, SendOutcome
from tenant_worker.services.sending import SendReport

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "infra" / "k8s" / "alerts.yaml"


def sample(name: str, **labels: str) -> float:
    return prometheus.REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(
    ("queue", "label"),
    [(constants.shard_queue(0), "0"), (constants.shard_queue(15), "15"),
     (constants.dedicated_queue("acme"), "dedicated"), (constants.CONTROL_QUEUE, "other"), ("", "other")],
)  # fmt: skip
def test_the_shard_label_is_a_shard_number_or_dedicated_never_a_tenant(queue: str, label: str) -> None:
    assert prometheus.shard_label(queue) == label


def test_a_send_report_is_counted_by_outcome_on_its_shard() -> None:
    before = {o: sample("tenant_worker_sms_total", outcome=o, shard="3") for o in prometheus.SMS_OUTCOMES}
    report = SendReport(sent=7, failed=1, unknown=2, skipped=1, deferred=0, paused=0, retry_ids=[1, 2, 3])
    prometheus.record_sms(constants.shard_queue(3), report.counts())
    after = {o: sample("tenant_worker_sms_total", outcome=o, shard="3") for o in prometheus.SMS_OUTCOMES}
    assert {o: after[o] - before[o] for o in after} == {
        "sent": 7, "failed": 1, "unknown": 2, "skipped": 1, "retry": 3, "deferred": 0, "paused": 0
    }  # fmt: skip


def test_status_reports_are_counted_by_status_and_an_unexpected_status_adds_no_series() -> None:
    delivered = sample("tenant_worker_status_reports_total", status="delivered")
    prometheus.count_status_report("delivered")
    prometheus.count_status_report("<script>" + "x" * 100)
    assert sample("tenant_worker_status_reports_total", status="delivered") == delivered + 1
    assert sample("tenant_worker_status_reports_total", status="other") >= 1
    text = prometheus.exposition()[0].decode()
    assert "<script>" not in text


def test_recovery_repairs_are_counted_by_result() -> None:
    ticks, requeued = (
        sample("tenant_worker_recovery_ticks_total"),
        sample("tenant_worker_recovery_repaired_rows_total", result="requeued"),
    )
    prometheus.record_repairs({"requeued": 4, "unknown": 0})
    assert sample("tenant_worker_recovery_ticks_total") == ticks + 1
    assert sample("tenant_worker_recovery_repaired_rows_total", result="requeued") == requeued + 4


class SlowGateway:
    def send(self, sms: OutboundSms) -> SendOutcome:
        time.sleep(0.02)
        return SendOutcome(OutcomeKind.UNKNOWN, error="read timeout")

    def check_access(self) -> AccessCheck:
        return AccessCheck.OK

    def close(self) -> None:
        pass


def test_the_timed_gateway_observes_each_send_by_outcome_and_passes_everything_through() -> None:
    count = sample("tenant_worker_send_seconds_count", outcome="unknown")
    fast = sample("tenant_worker_send_seconds_bucket", outcome="unknown", le="0.01")
    gateway = prometheus.TimedGateway(SlowGateway())
    outcome = gateway.send(OutboundSms("1", "Acme", "+31612345678", "hi"))
    assert outcome.kind == OutcomeKind.UNKNOWN and gateway.check_access() == AccessCheck.OK
    assert sample("tenant_worker_send_seconds_count", outcome="unknown") == count + 1
    assert sample("tenant_worker_send_seconds_bucket", outcome="unknown", le="0.01") == fast  # it took 20 ms


def test_the_api_serves_its_metrics_without_a_key(settings: Settings) -> None:
    prometheus.count_status_report("buffered")

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(bootstrap(settings)))
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return await client.get("/metrics")

    answer = asyncio.run(get())
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert 'tenant_worker_status_reports_total{status="buffered"}' in answer.text


@pytest.fixture
def settings() -> Settings:
    return Settings(redis_url="redis://127.0.0.1:1/0")


def exported_names() -> set[str]:
    """Every sample name tenant-worker's processes export (the registry and beat's state gauges)."""
    state = StateCollector("postgresql://unused/none", None, 16)  # type: ignore[arg-type]
    state._reading = _Reading(depths={"q": 1}, oldest={"q": 1.0}, at=time.monotonic())
    families = [*prometheus.REGISTRY.collect(), *state.collect()]
    names = {s.name for family in families for s in family.samples}
    # Histograms export _bucket/_count/_sum; counters _total: with no observation yet, add them by type.
    for family in families:
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}.get(family.type, ())
        names |= {family.name + suffix for suffix in suffixes}
    return names


def alert_rules() -> list[dict[str, Any]]:
    [rule] = [d for d in yaml.safe_load_all(ALERTS.read_text()) if d and d["kind"] == "PrometheusRule"]
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def test_the_alert_rules_cover_what_the_operator_must_hear_about() -> None:
    names = {r["alert"] for r in alert_rules()}
    assert {
        "TenantWorkerOldestPendingTooOld", "TenantWorkerNoBeatLeader", "TenantWorkerGatewayBreakerOpen",
        "TenantWorkerFailureRatioHigh", "TenantWorkerRecoveryRepairingContinuously",
    } <= names  # fmt: skip
    for rule in alert_rules():
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["runbook"], rule["alert"]


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_each_alert_expression_names_only_metrics_that_exist(rule: dict[str, Any]) -> None:
    used = set(re.findall(r"\b(tenant_worker_\w+)", rule["expr"]))
    assert used, rule["expr"]
    missing = used - exported_names()
    assert not missing, f"{rule['alert']} names {sorted(missing)}, which no process exports"
    for labels in re.findall(r"\{([^}]*)\}", rule["expr"]):
        assert "tenant" not in re.findall(r"(\w+)\s*[=!~]", labels)


def test_queue_kinds_match_the_queue_names() -> None:
    assert queue_kind(constants.shard_queue(2)) == "shard"
    assert queue_kind(constants.dedicated_queue("big")) == "dedicated"
    assert queue_kind(constants.CONTROL_QUEUE) == "control"
    assert queue_kind(constants.DEFAULT_QUEUE) == "default"


def test_a_taken_metrics_port_is_logged_and_the_process_carries_on(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert prometheus.serve("127.0.0.1", taken.getsockname()[1]) is False
    assert "cannot serve" in caplog.text
