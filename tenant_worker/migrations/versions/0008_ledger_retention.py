"""Ledger retention: closed reminders by age, for ``ledger prune``.

``reminders_closed_since_idx`` orders the closed rows (neither pending nor sending) by
``(updated_at, id)``, so a prune batch is a range scan that starts after the previous batch's last row
and stops at its ``LIMIT``: a batch costs the rows it examines, however large the ledger, and rows
kept (a current expiry's) or already deleted are not read again. Without it each batch would scan the
ledger (the closed rows' other index leads with ``tenant_id``). Built CONCURRENTLY outside the
migration transaction, so workers keep writing the ledger meanwhile.

Revision ID: 0008
Revises: 0007
"""

from alembic import op
from sqlalchemy import text

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_CLOSED = "status NOT IN ('pending', 'sending')"


def upgrade() -> None:
    """Build the index without blocking writes."""
    with op.get_context().autocommit_block():
        op.create_index(
            "reminders_closed_since_idx",
            "reminders",
            ["updated_at", "id"],
            postgresql_where=text(_CLOSED),
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def downgrade() -> None:
    """Drop the index."""
    with op.get_context().autocommit_block():
        op.drop_index("reminders_closed_since_idx", table_name="reminders", postgresql_concurrently=True)
