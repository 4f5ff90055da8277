"""Grouping bad endings into alerts: one report per (tenant, status, reason), never one per reminder.

A batch of 50 reminders refused by MessageBird, or 10,000 rows the recovery tick settles after a
crash, is one incident for an operator. The services collect the rows that ended badly in a
:class:`BatchAlerts` and hand each group to the :class:`~tenant_worker.domain.ports.AlertSink` once;
the Sentry sink then limits events per incident further (see ``adapters/sentry.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tenant_worker.domain.ports import AlertSink


@dataclass
class _Group:
    ids: list[int] = field(default_factory=list)
    error: str | None = None


@dataclass
class BatchAlerts:
    """Rows that ended badly in one unit of work, grouped by (status, reason)."""

    groups: dict[tuple[str, str], _Group] = field(default_factory=dict)

    def add(self, status: str, reason: str, reminder_id: int, error: str | None) -> None:
        """Remember one row; the first error text of a group is its sample."""
        group = self.groups.setdefault((str(status), reason), _Group())
        group.ids.append(reminder_id)
        group.error = group.error or error

    def send(self, sink: AlertSink, tenant_slug: str) -> None:
        """One report per group (call after the outcomes are committed, so alerts match the ledger)."""
        for (status, reason), group in self.groups.items():
            sink.reminders_ended(tenant_slug, status, reason, group.ids, group.error)
        self.groups.clear()
