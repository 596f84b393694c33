"""Partitions remember consecutive failed runs and when the scheduler retries them."""

import sqlalchemy as sa
from alembic import op

revision = "0002_partition_retries"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sp_partitions", sa.Column("failures", sa.Integer, nullable=False, server_default="0"))
    op.add_column("sp_partitions", sa.Column("failed_at", sa.String(32)))
    op.add_column("sp_partitions", sa.Column("retry_at", sa.String(32)))
    op.add_column("sp_partitions", sa.Column("retry_mode", sa.String(40)))


def downgrade() -> None:
    for column in ("retry_mode", "retry_at", "failed_at", "failures"):
        op.drop_column("sp_partitions", column)
