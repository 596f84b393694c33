"""A partition's own frequency may be a cron expression (`cron: 0 * * * *`), kept beside `frequency_seconds`."""

import sqlalchemy as sa
from alembic import op

revision = "0008_parity_runs"
down_revision = "0006_connection_auth"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sp_partitions", sa.Column("frequency_cron", sa.String(255)))


def downgrade() -> None:
    op.drop_column("sp_partitions", "frequency_cron")
