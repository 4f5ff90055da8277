"""Per-tenant schedule: local send time and allowed sending window.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the schedule columns with defaults, so existing tenants get 10:00 and 08:00-21:00."""
    op.add_column("tenants", sa.Column("send_time", sa.Time(), server_default="10:00", nullable=False))
    op.add_column("tenants", sa.Column("window_start", sa.Time(), server_default="08:00", nullable=False))
    op.add_column("tenants", sa.Column("window_end", sa.Time(), server_default="21:00", nullable=False))
    op.add_column("tenants", sa.Column("scheduled", sa.Boolean(), server_default=sa.text("true"), nullable=False))


def downgrade() -> None:
    """Drop the schedule columns (their constraints go with them)."""
    for column in ("scheduled", "window_end", "window_start", "send_time"):
        op.drop_column("tenants", column)
