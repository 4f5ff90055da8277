"""Per-tenant API keys for the HTTP control plane.

A key is shown once, when it is created; only its SHA-256 is kept (``secret_hash``). Keys are 256
random bits, so a plain hash is enough: a slow password hash protects guessable secrets, and these
are not guessable. ``prefix`` is the visible start of the key (``twk_`` and a few characters) so an
operator can tell keys apart in listings and logs without seeing the secret. A revoked key keeps
its row (``revoked_at``) so the listing shows who had access and until when.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the table; keys belong to one tenant and go with it."""
    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("tenant_id", sa.BigInteger, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False, unique=True),
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("api_keys_tenant_idx", "api_keys", ["tenant_id"])


def downgrade() -> None:
    """Drop the table (every key stops working)."""
    op.drop_table("api_keys")
