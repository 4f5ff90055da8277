"""The naive baseline of scripts/bench_dispatch.py, as a Celery app module.

One task per SMS, the MessageBird SDK as shipped (a new ``messagebird.Client`` per message with the
SDK's own ``HttpClient``: ``requests.post``, no connection reuse, no timeout), run by a prefork
worker with concurrency 2. It writes the same ledger as tenant-worker, so duplicates and lost
messages are counted the same way. Start it with::

    celery -A bench_naive worker -P prefork -c 2 -Q bench.naive   (from scripts/)
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import messagebird
from messagebird.client import ErrorException
from messagebird.http_client import HttpClient

from tenant_worker.bootstrap import bootstrap
from tenant_worker.celery_app import create_app
from tenant_worker.config import load_settings
from tenant_worker.domain.model import OutboundSms, OutcomeKind, SendOutcome
from tenant_worker.domain.ports import NoAlerts
from tenant_worker.services import sending

QUEUE = "bench.naive"
app = create_app(load_settings())
_services = bootstrap(load_settings(), app)


class ShippedSdkGateway:
    """The SDK exactly as its README shows it, pointed at the emulator."""

    def send(self, sms: OutboundSms) -> SendOutcome:
        config = _services.settings
        http = HttpClient(config.messagebird_endpoint, config.messagebird_access_key, "MessageBird/ApiClient")
        client = messagebird.Client(config.messagebird_access_key, http_client=http)
        try:
            message = client.message_create(sms.originator, [sms.recipient], sms.body, {"reference": sms.reference})
        except ErrorException as exc:
            return SendOutcome(OutcomeKind.FAILED, error=str(exc))
        except Exception as exc:  # the shipped client raises requests' HTTPError for 429/5xx
            return SendOutcome(OutcomeKind.RETRY, error=type(exc).__name__)
        return SendOutcome(OutcomeKind.SENT, provider_id=str(message.id))

    def close(self) -> None:
        """Nothing pooled."""


_inline = ThreadPoolExecutor(max_workers=1)


@app.task(name="bench.naive_send", ignore_result=True)
def naive_send(tenant_id: int, reminder_id: int) -> dict[str, Any]:
    """Send one reminder (no retries: a failure stays pending and counts as lost)."""
    report = sending.send_reminders(
        _services.uow, tenant_id, [reminder_id], ShippedSdkGateway(), _inline, _services.settings, NoAlerts()
    )
    return {"sent": report.sent}
