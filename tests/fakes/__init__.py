"""In-memory stand-ins for every port, for unit tests of the services.

Each passes the same contract tests as its real adapter (``tests/contract``; the breaker's in
``tests/integration/test_gateway_breaker.py``), so a unit test may trust what they do:

- :class:`FakeStorage` (the unit-of-work factory, with :class:`FakeCatalog`, :class:`FakeLedger` and
  :class:`FakeLedgerMaintenance` inside), seeded with ``add_tenant``/``add_customers``, made to fail with
  ``fail_next``;
- :class:`FakeClock`; :class:`FakeGateway` (scripted outcomes per recipient), :class:`KeyCheckingGateway`,
  :class:`MemoryGatewayBreaker`, :class:`RecordingAlerts`;
- :class:`FakeQueue` (the task publisher), :class:`FakeBrokerMarker`, :class:`FakeScheduleStore`;
- :class:`FakeApiKeyStore` (tenant API keys).
"""

from tests.fakes.api_keys import FakeApiKeyStore
from tests.fakes.broker import Enqueued, FakeBrokerMarker, FakeQueue, FakeScheduleStore
from tests.fakes.catalog import FakeCatalog
from tests.fakes.clock import FakeClock
from tests.fakes.gateway import FakeGateway, KeyCheckingGateway, MemoryGatewayBreaker, RecordingAlerts
from tests.fakes.ledger import FakeLedger
from tests.fakes.maintenance import FakeLedgerMaintenance
from tests.fakes.storage import FakeStorage, FakeUnitOfWork
from tests.fakes.tables import ConstraintViolation

__all__ = [
    "ConstraintViolation",
    "Enqueued",
    "FakeApiKeyStore",
    "FakeBrokerMarker",
    "FakeCatalog",
    "FakeClock",
    "FakeGateway",
    "FakeLedger",
    "FakeLedgerMaintenance",
    "FakeQueue",
    "FakeScheduleStore",
    "FakeStorage",
    "FakeUnitOfWork",
    "KeyCheckingGateway",
    "MemoryGatewayBreaker",
    "RecordingAlerts",
]
