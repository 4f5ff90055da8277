"""Ledger retention: delete, in bounded batches, the reminders the window rule no longer reads.

The ledger grows by up to one row per window per subscription per cycle. A row may go only when it
is closed (sent, failed, skipped or unknown: nothing will change it on its own), last changed more
than ``older_than_days`` ago, and of a past cycle (its subscription has renewed since: its
``expires_on`` is not the subscription's) or of a removed subscription or customer. A current
expiry's rows always stay, however old: the claim (``domain.windows``) reads them to never send a
window twice, and ``reminders retry`` reopens the current cycle's ``failed`` and ``unknown`` rows.

* **Age by ``updated_at``**, not ``created_at``: it is never earlier, so the rule only keeps more;
  a row an operator resent, or the recovery tick settled, recently counts as recent.
* **``unknown`` rows** are pruned like the other closed ones once they are of a past cycle and that
  old: resending one would text a customer about an expiry long replaced by a renewal, which is what
  ``reminders retry`` without ``--since`` would otherwise do.
* **At least** :data:`MIN_RETENTION_DAYS`: a row is created at most ``MAX_WINDOW_DAYS`` before its
  expiry, so a row older than that belongs to an expiry already past. Even a subscription restored,
  or moved back to an old expiry, could then not have a window claimed again for a pruned row.

Each batch is its own statement and transaction (locks held for one batch only, WAL spread out) and
examines the next ``batch_size`` closed rows older than the cut-off, oldest first, resuming after the
previous batch's last row: a run reads each old row once, however many it must keep. The loop stops
after ``max_seconds`` whatever remains; the next run starts again from the oldest rows.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from tenant_worker.domain.records import PruneCursor
from tenant_worker.domain.storage import UnitOfWorkFactory
from tenant_worker.domain.windows import MAX_WINDOW_DAYS

# A month beyond the longest reminder window (and a day of time zones).
MIN_RETENTION_DAYS = MAX_WINDOW_DAYS + 30  # also checked by config.Settings
DEFAULT_BATCH_SIZE = 5000
DEFAULT_MAX_SECONDS = 600.0


@dataclass
class PruneReport:
    """What a prune deleted (or, dry, would delete)."""

    older_than_days: int
    cutoff: dt.datetime
    deleted: int = 0
    batches: int = 0
    seconds: float = 0.0
    # Nothing prunable was left when it stopped (false: stopped by ``max_seconds``; run again).
    complete: bool = False
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = asdict(self)
        data["cutoff"] = self.cutoff.isoformat()
        return data


def check_days(days: int) -> int:
    """``days`` if it is a safe retention, else ``ValueError`` saying why."""
    if days < MIN_RETENTION_DAYS:
        raise ValueError(
            f"--older-than must be at least {MIN_RETENTION_DAYS} days (a reminder is made up to {MAX_WINDOW_DAYS} "
            f"days before its expiry; younger rows may still be needed), not {days}"
        )
    return days


def parse_days(text: str) -> int:
    """A command-line retention in whole days."""
    try:
        days = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number of days") from None
    return check_days(days)


def cutoff(now: dt.datetime, days: int) -> dt.datetime:
    """The instant rows must be last changed before to go."""
    return now - dt.timedelta(days=check_days(days))


def count_prunable(uow: UnitOfWorkFactory, days: int, now: dt.datetime) -> PruneReport:
    """A dry run: how many rows a prune would delete now; nothing is written."""
    report = PruneReport(days, cutoff(now, days), dry_run=True)
    with uow() as tx:
        report.deleted = tx.maintenance.count_prunable(report.cutoff)
    report.complete = True
    return report


def prune_ledger(
    uow: UnitOfWorkFactory,
    days: int,
    now: dt.datetime,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    monotonic: Callable[[], float] = time.monotonic,
) -> PruneReport:
    """Delete the prunable rows last changed more than ``days`` before ``now``, ``batch_size`` per
    transaction, until none is left or ``max_seconds`` have passed."""
    if batch_size < 1:
        raise ValueError("the batch size must be at least 1")
    report = PruneReport(days, cutoff(now, days))
    start = monotonic()
    after: PruneCursor | None = None
    while True:
        with uow() as tx:
            batch = tx.maintenance.prune(report.cutoff, batch_size, after)
        after = batch.last
        report.batches += 1
        report.deleted += batch.deleted
        report.seconds = round(monotonic() - start, 3)
        if batch.examined < batch_size:
            report.complete = True
            return report
        if report.seconds >= max_seconds:
            return report
