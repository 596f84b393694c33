"""Webhook deliveries know their sync partition and the order of their events, to be sent in order."""

import sqlalchemy as sa
from alembic import op

revision = "0004_delivery_order"
down_revision = "0003_run_tallies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sp_webhook_deliveries", sa.Column("partition_id", sa.String(700)))
    op.add_column("sp_webhook_deliveries", sa.Column("event_seq", sa.BigInteger))
    op.create_index("ix_sp_deliveries_order", "sp_webhook_deliveries", ["status", "partition_id", "event_seq"])


def downgrade() -> None:
    op.drop_index("ix_sp_deliveries_order", "sp_webhook_deliveries")
    op.drop_column("sp_webhook_deliveries", "event_seq")
    op.drop_column("sp_webhook_deliveries", "partition_id")
