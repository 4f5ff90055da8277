"""Continuous recovery: when a send request started, and indexes that find stale work by age.

``send_started_at`` is set (per group of a batch, before any of the group's requests is started)
while a row is ``sending``. A row whose worker died is resent only if it is still NULL: its request
was never started, so it cannot have reached MessageBird. The two partial indexes let the recovery
tick find ``sending`` rows claimed long ago and ``pending`` rows published long ago by a range scan
on their age, so a tick costs what it repairs, never a scan of the ledger.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import text

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_INDEXES = {
    "reminders_sending_since_idx": ("updated_at", "status = 'sending'"),
    "reminders_published_since_idx": ("enqueued_at", "status = 'pending' AND enqueued_at IS NOT NULL"),
}


def upgrade() -> None:
    """Add the column (no default, no rewrite), then build the indexes CONCURRENTLY outside the
    migration transaction so workers keep writing the ledger meanwhile."""
    op.add_column("reminders", sa.Column("send_started_at", sa.DateTime(timezone=True), nullable=True))
    with op.get_context().autocommit_block():
        for name, (column, where) in _INDEXES.items():
            op.create_index(name, "reminders", [column], postgresql_where=text(where), postgresql_concurrently=True)


def downgrade() -> None:
    """Drop the indexes and the column."""
    with op.get_context().autocommit_block():
        for name in _INDEXES:
            op.drop_index(name, table_name="reminders", postgresql_concurrently=True)
    op.drop_column("reminders", "send_started_at")
