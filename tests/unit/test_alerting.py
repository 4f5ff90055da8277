"""Grouping bad endings into alerts: one report per (status, reason) of a unit of work, never one per
reminder; and the access-key check a worker runs when it starts."""

from __future__ import annotations

import pytest

from tenant_worker.config import ConfigurationError, Settings, load_settings
from tenant_worker.domain.model import AccessCheck, ReminderStatus
from tenant_worker.services.alerting import BatchAlerts
from tenant_worker.services.gateway_access import check_key_at_start
from tests.fakes import KeyCheckingGateway, MemoryGatewayBreaker, RecordingAlerts


def test_a_batch_with_nothing_bad_sends_no_alert() -> None:
    sink = RecordingAlerts()
    BatchAlerts().send(sink, "acme")
    assert sink.ended == []


def test_rows_are_reported_once_per_status_and_reason_with_their_ids_in_order() -> None:
    alerts = BatchAlerts()
    for reminder_id in range(1, 51):
        alerts.add(ReminderStatus.FAILED, "refused", reminder_id, f"refused #{reminder_id}")
    alerts.add(ReminderStatus.UNKNOWN, "no_answer", 51, "read timeout")
    alerts.add(ReminderStatus.FAILED, "template_error", 52, None)
    alerts.add(ReminderStatus.UNKNOWN, "no_answer", 53, "connection reset")
    sink = RecordingAlerts()

    alerts.send(sink, "acme")

    assert sink.ended == [
        ("acme", "failed", "refused", list(range(1, 51)), "refused #1"),
        ("acme", "unknown", "no_answer", [51, 53], "read timeout"),
        ("acme", "failed", "template_error", [52], None),
    ]
    assert all(type(status) is str for _, status, _, _, _ in sink.ended)


def test_the_first_error_text_of_a_group_is_its_sample_even_after_rows_without_one() -> None:
    alerts = BatchAlerts()
    alerts.add("unknown", "worker_lost", 1, None)
    alerts.add("unknown", "worker_lost", 2, "worker lost while sending")
    alerts.add("unknown", "worker_lost", 3, "something else")
    sink = RecordingAlerts()
    alerts.send(sink, "acme")
    assert sink.ended == [("acme", "unknown", "worker_lost", [1, 2, 3], "worker lost while sending")]


def test_sending_empties_the_batch_so_nothing_is_reported_twice() -> None:
    alerts = BatchAlerts()
    alerts.add("failed", "refused", 7, "no")
    sink = RecordingAlerts()
    alerts.send(sink, "acme")
    alerts.send(sink, "acme")
    assert len(sink.ended) == 1


def _settings(production: bool) -> Settings:
    env = {"SMS_BACKEND": "messagebird", "MESSAGEBIRD_ACCESS_KEY": "k"}
    return load_settings({**env, "TENANT_WORKER_ENV": "production"} if production else env)


def test_a_rejected_key_stops_a_production_worker_and_leaves_the_breaker_alone() -> None:
    breaker = MemoryGatewayBreaker()
    with pytest.raises(ConfigurationError, match="MESSAGEBIRD_ACCESS_KEY"):
        check_key_at_start(_settings(True), KeyCheckingGateway(AccessCheck.REJECTED), breaker)
    assert not breaker.is_open()


def test_a_rejected_key_is_a_warning_outside_production() -> None:
    line = check_key_at_start(_settings(False), KeyCheckingGateway(AccessCheck.REJECTED), MemoryGatewayBreaker())
    assert line.startswith("warning:") and "401/403" in line


def test_an_unreachable_gateway_says_nothing_about_the_key_and_keeps_the_breaker_open() -> None:
    breaker = MemoryGatewayBreaker()
    breaker.trip("HTTP 401")
    line = check_key_at_start(_settings(True), KeyCheckingGateway(AccessCheck.UNREACHABLE), breaker)
    assert line.startswith("warning: cannot reach MessageBird")
    assert breaker.is_open()


def test_a_key_that_works_closes_an_open_breaker_so_sending_resumes_at_once() -> None:
    breaker = MemoryGatewayBreaker()
    breaker.trip("HTTP 401")
    line = check_key_at_start(_settings(False), KeyCheckingGateway(AccessCheck.OK), breaker)
    assert "now closed" in line and not breaker.is_open()
    assert check_key_at_start(_settings(False), KeyCheckingGateway(AccessCheck.OK), breaker) == ""
