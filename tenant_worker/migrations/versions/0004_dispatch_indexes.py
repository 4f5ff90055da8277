"""Reminder indexes for dispatching that cost O(batches in flight), not O(backlog).

Before: every finished batch counted and sorted its tenant's whole open backlog through
``reminders_open_idx`` (8 ms per batch for a tenant with 50,000 reminders waiting, under the tenant's
dispatch lock), and with statistics that had not yet seen a sweep's new rows the planner also
fetched a batch's 50 ids by scanning that backlog. Now the open rows are split into the two sets
dispatching reads (waiting for a task; with a task in flight), and no index leads with the tenant
over all its rows, so a batch's ids are always looked up by primary key (an index on
``(tenant_id, ...)`` looked cheaper to a planner that had not seen the sweep's rows yet, and was
walked in full for every batch). The ledger listing, newest first, reads the three partial indexes:
the closed rows' index is one no dispatch statement can use.

Revision ID: 0004
Revises: 0003
"""

from alembic import op
from sqlalchemy import text

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_Indexes = dict[str, tuple[list[str], str | None]]

_NEW: _Indexes = {
    "reminders_waiting_idx": (["tenant_id", "id"], "status = 'pending' AND enqueued_at IS NULL"),
    "reminders_in_flight_idx": (
        ["tenant_id", "enqueued_at"],
        "status = 'sending' OR (status = 'pending' AND enqueued_at IS NOT NULL)",
    ),
    "reminders_closed_idx": (["tenant_id", "id"], "status NOT IN ('pending', 'sending')"),
}
_OLD: _Indexes = {
    "reminders_open_idx": (["tenant_id", "status"], "status IN ('pending', 'sending')"),
    "reminders_tenant_created_idx": (["tenant_id", "created_at"], None),
}


def _create(indexes: _Indexes) -> None:
    for name, (columns, where) in indexes.items():
        predicate = text(where) if where else None
        op.create_index(name, "reminders", columns, postgresql_where=predicate, postgresql_concurrently=True)


def _drop(indexes: _Indexes) -> None:
    for name in indexes:
        op.drop_index(name, table_name="reminders", postgresql_concurrently=True)


def upgrade() -> None:
    """Build the new indexes before dropping the old ones, all CONCURRENTLY and outside the migration
    transaction: a plain CREATE INDEX would block every worker's ledger writes for the whole build."""
    with op.get_context().autocommit_block():
        _create(_NEW)
        _drop(_OLD)


def downgrade() -> None:
    """Restore the previous indexes."""
    with op.get_context().autocommit_block():
        _create(_OLD)
        _drop(_NEW)
