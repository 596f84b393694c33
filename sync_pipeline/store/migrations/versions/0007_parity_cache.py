"""Issue 12's cache semantics: a run's progress counts beside its checkpoint, a trigger that lets one mass
deletion through, and shadow streams that a cache-clearing run fills before they replace the real ones.

Each column is nullable or has a server default, so existing rows need nothing.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_parity_cache"
down_revision = "0006_connection_auth"
branch_labels = None
depends_on = None

NEW_COLUMNS = {
    # Pages, requests, records fetched and saved of the run in progress (JSON), for /sync/status.
    "sp_run_progress": [sa.Column("progress", sa.Text)],
    # A pending trigger's `allowMassDelete`: its run may delete more than the mass-deletion guard allows.
    "sp_partitions": [
        sa.Column("trigger_allow_mass_delete", sa.Boolean, nullable=False, server_default=sa.false()),
    ],
    # The stream a cache-clearing run's shadow replaces when the run succeeds (NULL for real streams).
    "sp_streams": [sa.Column("shadow_of", sa.Integer)],
}


def upgrade() -> None:
    for table, columns in NEW_COLUMNS.items():
        for column in columns:
            op.add_column(table, column)


def downgrade() -> None:
    for table, columns in NEW_COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.drop_column(column.name)
