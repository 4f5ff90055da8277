"""Checking MessageBird's access key when a worker starts, so a wrong key is an error at deploy time
rather than a paused pipeline found later."""

from __future__ import annotations

from tenant_worker.config import ConfigurationError, Settings
from tenant_worker.domain.model import AccessCheck
from tenant_worker.domain.ports import GatewayBreaker, SmsGateway


def check_key_at_start(settings: Settings, gateway: SmsGateway, breaker: GatewayBreaker) -> str:
    """One ``GET /balance``. A rejected key is fatal in production (the worker must not start) and a
    warning elsewhere; a key that works closes the breaker, so workers restarted with a fixed key
    resume at once instead of at the next probe. Returns the line to print."""
    result = gateway.check_access()
    if result == AccessCheck.REJECTED:
        problem = "MessageBird rejects MESSAGEBIRD_ACCESS_KEY (HTTP 401/403): set a valid access key"
        if settings.production:
            raise ConfigurationError(problem)
        return f"warning: {problem}; reminders wait as pending until it works"
    if result == AccessCheck.UNREACHABLE:
        return f"warning: cannot reach MessageBird at {settings.messagebird_endpoint} to check the access key"
    if breaker.reset():
        return "MessageBird accepts the access key: the gateway breaker was open and is now closed"
    return ""
