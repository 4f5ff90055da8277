"""The access-key check a worker runs at start, on a fake gateway and breaker."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tenant_worker.config import ConfigurationError, Settings
from tenant_worker.domain.model import AccessCheck
from tenant_worker.services.gateway_access import check_key_at_start
from tests.fakes import FakeGateway, MemoryGatewayBreaker


def test_a_rejected_key_stops_a_production_worker_from_starting(settings: Settings) -> None:
    production = replace(settings, environment="production")
    with pytest.raises(ConfigurationError, match="MESSAGEBIRD_ACCESS_KEY"):
        check_key_at_start(production, FakeGateway(access=AccessCheck.REJECTED), MemoryGatewayBreaker())


def test_a_rejected_key_is_a_warning_elsewhere_and_leaves_the_breaker_alone(settings: Settings) -> None:
    breaker = MemoryGatewayBreaker()
    breaker.trip("revoked")
    line = check_key_at_start(settings, FakeGateway(access=AccessCheck.REJECTED), breaker)
    assert line.startswith("warning: MessageBird rejects") and breaker.is_open()


def test_an_unreachable_provider_says_nothing_about_the_key(settings: Settings) -> None:
    breaker = MemoryGatewayBreaker()
    breaker.trip("revoked")
    line = check_key_at_start(settings, FakeGateway(access=AccessCheck.UNREACHABLE), breaker)
    assert "cannot reach MessageBird" in line and breaker.is_open()


def test_a_working_key_closes_an_open_breaker_at_once(settings: Settings) -> None:
    breaker = MemoryGatewayBreaker()
    breaker.trip("revoked")
    assert "now closed" in check_key_at_start(settings, FakeGateway(), breaker)
    assert not breaker.is_open()
    assert check_key_at_start(settings, FakeGateway(), breaker) == ""
