"""Per-tenant cap on SMS segments per reminder: ``tenants.max_segments`` (default 3, 1 to 10).

Adding a column with a constant default is a catalogue change in PostgreSQL 11+ (no table rewrite),
and the CHECK constraint reads the small tenants table once. Existing tenants get the default: their
templates were saved without the check, so a reminder that renders over 3 segments is skipped as
``too_long`` (and alerted) until the tenant raises ``max_segments`` or shortens its template.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the column with its default, then its range check."""
    op.add_column("tenants", sa.Column("max_segments", sa.Integer(), server_default=sa.text("3"), nullable=False))
    op.create_check_constraint("tenants_max_segments_range", "tenants", "max_segments BETWEEN 1 AND 10")


def downgrade() -> None:
    """Drop the check and the column."""
    op.drop_constraint("tenants_max_segments_range", "tenants", type_="check")
    op.drop_column("tenants", "max_segments")
