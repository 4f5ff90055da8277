"""Delivery receipts and opt-out by reply.

* ``reminders.delivery_status`` / ``delivery_status_at`` / ``delivery_reason`` /
  ``delivery_error_code``: the last status report MessageBird sent for the SMS (``buffered``,
  ``delivered``, ``delivery_failed``, ``expired``…), its time and why. NULL: no report yet. Reports
  arrive late, twice and out of order; the adapter only moves a row forward (a late ``buffered`` never
  overwrites ``delivered``).
* ``customers.opted_out_at``: when the customer opted out (a STOP reply, the CLI or the API), so an
  operator can answer "since when".

Nullable columns without defaults: no table rewrite, sends keep running during the migration.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the columns."""
    op.add_column("reminders", sa.Column("delivery_status", sa.String(24), nullable=True))
    op.add_column("reminders", sa.Column("delivery_status_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("reminders", sa.Column("delivery_reason", sa.Text, nullable=True))
    op.add_column("reminders", sa.Column("delivery_error_code", sa.Integer, nullable=True))
    op.add_column("customers", sa.Column("opted_out_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop the columns."""
    op.drop_column("customers", "opted_out_at")
    for column in ("delivery_error_code", "delivery_reason", "delivery_status_at", "delivery_status"):
        op.drop_column("reminders", column)
