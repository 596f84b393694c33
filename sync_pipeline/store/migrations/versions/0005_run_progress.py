"""The unfinished run of each partition (its checkpoint) moves from Dagster observations into our database.

Databases made by the release that introduced it, before the schema was versioned, already have the table:
it is created only where missing.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_run_progress"
down_revision = "0004_delivery_order"
branch_labels = None
depends_on = None

run_progress = sa.Table(
    "sp_run_progress",
    sa.MetaData(),
    sa.Column("integration", sa.String(255), primary_key=True),
    sa.Column("sync_name", sa.String(255), primary_key=True),
    sa.Column("partition_key", sa.String(600), primary_key=True),
    sa.Column("generation", sa.String(64), nullable=False),
    sa.Column("started_at", sa.String(32), nullable=False),
    sa.Column("checkpoint", sa.Text),
    sa.Column("updated_at", sa.String(32), nullable=False),
)


def upgrade() -> None:
    run_progress.create(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    op.drop_table("sp_run_progress")
