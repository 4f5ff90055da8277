"""The ledger's closed rows by tenant and claim day, for the HTTP API's per-day counts.

``reminders_closed_day_idx`` on ``(tenant_id, local_date)`` over the closed rows (neither pending nor
sending): counting a tenant's reminders per day over a date range reads that range's rows, not the
tenant's whole history (the ledger can hold tens of millions of rows). Closed rows only, like
``reminders_closed_idx``: no dispatch statement can use it (each names an open status), so it cannot
tempt the planner into walking a tenant (migration 0004). It holds no column a delivery receipt
writes, so recording one stays a HOT update. Built CONCURRENTLY outside the migration transaction.

Revision ID: 0012
Revises: 0011
"""

from alembic import op
from sqlalchemy import text

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_CLOSED = "status NOT IN ('pending', 'sending')"


def upgrade() -> None:
    """Build the index without blocking writes."""
    with op.get_context().autocommit_block():
        op.create_index(
            "reminders_closed_day_idx",
            "reminders",
            ["tenant_id", "local_date"],
            postgresql_where=text(_CLOSED),
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def downgrade() -> None:
    """Drop the index."""
    with op.get_context().autocommit_block():
        op.drop_index("reminders_closed_day_idx", table_name="reminders", postgresql_concurrently=True)
