"""Shard map: each tenant stores its Celery queue, plus an optional per-tenant send rate.

Existing tenants are back-filled with their hash shard under the ``shard_count`` passed by
``tenant-worker db upgrade`` (``SHARD_COUNT``, default 16). The column is stored, not computed, so a
later change of ``SHARD_COUNT`` moves nobody; ``tenant-worker tenant move`` does that explicitly.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import context, op

from tenant_worker.constants import DEFAULT_SHARD_COUNT
from tenant_worker.domain.shards import queue_for_new_tenant

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``tenants.queue`` (back-filled, then NOT NULL) and ``tenants.rate_per_second``."""
    shard_count = int(context.config.attributes.get("shard_count", DEFAULT_SHARD_COUNT))
    op.add_column("tenants", sa.Column("queue", sa.String(length=100), nullable=True))
    op.add_column("tenants", sa.Column("rate_per_second", sa.Float(), nullable=True))
    connection = op.get_bind()
    tenants = connection.execute(sa.text("SELECT id, slug FROM tenants WHERE queue IS NULL")).all()
    for tenant_id, slug in tenants:
        connection.execute(
            sa.text("UPDATE tenants SET queue = :queue WHERE id = :id"),
            {"queue": queue_for_new_tenant(tenant_id, slug, shard_count), "id": tenant_id},
        )
    op.alter_column("tenants", "queue", nullable=False)
    op.create_check_constraint("tenants_queue_format", "tenants", "queue ~ '^[a-z0-9][a-z0-9._-]{0,99}$'")
    op.create_check_constraint("tenants_rate_positive", "tenants", "rate_per_second IS NULL OR rate_per_second > 0")
    op.create_index("tenants_queue_idx", "tenants", ["queue"], unique=False)


def downgrade() -> None:
    """Drop the shard map; every tenant's work goes back to the single default queue."""
    op.drop_index("tenants_queue_idx", table_name="tenants")
    op.drop_constraint("tenants_rate_positive", "tenants", type_="check")
    op.drop_constraint("tenants_queue_format", "tenants", type_="check")
    op.drop_column("tenants", "rate_per_second")
    op.drop_column("tenants", "queue")
