"""Several subscriptions per customer, and removal: the schema the customer sync needs.

* ``subscriptions.external_ref``: the billing platform's reference of a subscription (NULL: the
  customer's one subscription, as before). ``UNIQUE (customer_id)`` becomes unique per (customer,
  reference), with NULL counting as one value (``NULLS NOT DISTINCT``, PostgreSQL 15), so existing
  data and re-imports without the column keep exactly one subscription per customer.
* ``customers.removed_at`` / ``subscriptions.removed_at``: set when a full sync (or ``customers
  remove``) takes them away. Removed rows are kept (the ledger points at them, and a later import can
  bring them back); the sweep no longer claims reminders for them.
* ``customers.erased_at``: the customer's personal data was erased (right to erasure); the row stays
  as an anonymous count.

All three are nullable columns without defaults (no table rewrite). The unique index is built
CONCURRENTLY so sends keep writing meanwhile.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the columns, then swap the one-subscription constraint for one per (customer, reference)."""
    op.add_column("subscriptions", sa.Column("external_ref", sa.String(128), nullable=True))
    op.add_column("subscriptions", sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("customers", sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("customers", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    with op.get_context().autocommit_block():
        op.execute(
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS subscriptions_customer_ref_key "
            "ON subscriptions (customer_id, external_ref) NULLS NOT DISTINCT"
        )
    op.drop_constraint("subscriptions_customer_key", "subscriptions", type_="unique")


def downgrade() -> None:
    """Back to one subscription per customer (fails if a customer has several: merge them first)."""
    op.create_unique_constraint("subscriptions_customer_key", "subscriptions", ["customer_id"])
    op.drop_index("subscriptions_customer_ref_key", "subscriptions")
    op.drop_column("customers", "erased_at")
    op.drop_column("customers", "removed_at")
    op.drop_column("subscriptions", "removed_at")
    op.drop_column("subscriptions", "external_ref")
