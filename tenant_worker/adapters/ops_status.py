"""The ledger figures ``tenant-worker status`` shows, read with the recovery tick's and the metrics'
own index scans (so a status costs a few index probes, whatever the backlog)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from tenant_worker.adapters.db import session_factory
from tenant_worker.adapters.orm import CLOSED, PUBLISHED, SENDING
from tenant_worker.adapters.prometheus_state import OLDEST_PENDING
from tenant_worker.domain.heartbeat import LedgerHealth

# The predicates repeat the partial indexes' word for word so the planner uses them (orm.py).
_STRANDED_SENDING = text(f"SELECT count(*) FROM reminders WHERE ({SENDING}) AND updated_at < :before")
_STRANDED_PUBLISHED = text(f"SELECT count(*) FROM reminders WHERE ({PUBLISHED}) AND enqueued_at < :before")
_UNKNOWN = text(f"SELECT count(*) FROM reminders WHERE ({CLOSED}) AND updated_at >= :since AND status = 'unknown'")


class SqlLedgerHealth:
    """Reads :class:`LedgerHealth` from PostgreSQL."""

    def __init__(self, database_url: str, stale_sending_seconds: float, requeue_after_seconds: float) -> None:
        self.database_url = database_url
        self.stale_sending = dt.timedelta(seconds=stale_sending_seconds)
        self.requeue_after = dt.timedelta(seconds=requeue_after_seconds)

    def read(self, now: dt.datetime) -> LedgerHealth:
        """Oldest pending per queue, rows stranded now, and rows that became ``unknown`` in the last day."""
        with session_factory(self.database_url)() as session:
            oldest = {queue: at for queue, at in session.execute(OLDEST_PENDING).all()}
            sending = session.scalar(_STRANDED_SENDING, {"before": now - self.stale_sending})
            published = session.scalar(_STRANDED_PUBLISHED, {"before": now - self.requeue_after})
            unknown = session.scalar(_UNKNOWN, {"since": now - dt.timedelta(days=1)})
        return LedgerHealth(
            oldest_pending=oldest,
            stranded_sending=int(sending or 0),
            stranded_published=int(published or 0),
            unknown_last_day=int(unknown or 0),
        )
