"""Per-stream change counts of the current run generation, kept across resumed attempts."""

import sqlalchemy as sa
from alembic import op

revision = "0003_run_tallies"
down_revision = "0002_partition_retries"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sp_run_tallies",
        sa.Column("stream_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("generation", sa.String(64), nullable=False),
        sa.Column("low_watermark", sa.BigInteger, nullable=False),
        sa.Column("added", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("updated", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("deleted", sa.BigInteger, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("sp_run_tallies")
