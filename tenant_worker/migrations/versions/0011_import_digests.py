"""Source digests: a re-import recognises the rows it wrote before without validating them again.

* ``subscriptions.import_digest``: a 64-bit digest of the source row (its cells and the import's
  options) that last wrote the subscription through the customer import.
* ``subscriptions.import_state``: a 64-bit hash of the customer and subscription values that import
  wrote. A row is "unchanged since its import" while the same hash of the stored values still equals
  it, so any later change (an opt-out, a removal, an edit through another path) makes the next import
  validate and compare the row again; nothing else has to remember to clear the digest.

Nullable columns without defaults: no table rewrite; existing rows get their digests on their next
import.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the columns."""
    op.add_column("subscriptions", sa.Column("import_digest", sa.BigInteger, nullable=True))
    op.add_column("subscriptions", sa.Column("import_state", sa.BigInteger, nullable=True))


def downgrade() -> None:
    """Drop the columns (the next import validates every row)."""
    op.drop_column("subscriptions", "import_state")
    op.drop_column("subscriptions", "import_digest")
