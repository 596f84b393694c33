"""Connections get tags, an end user, a credentials version and a refresh lease; integrations get their OAuth
client credentials; connections record their errors.

Databases made before versioning by a release with these already have them (it created tables and added
columns itself): each table and column is added only where missing.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_connection_auth"
down_revision = "0005_run_progress"
branch_labels = None
depends_on = None


def new_columns() -> list[sa.Column]:
    return [
        sa.Column("tags", sa.JSON),
        sa.Column("end_user", sa.JSON),
        sa.Column("credentials_version", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("refresh_owner", sa.String(64)),
        sa.Column("refresh_until", sa.String(32)),
    ]


tables = sa.MetaData()
sa.Table(
    "sp_integration_credentials",
    tables,
    sa.Column("integration", sa.String(255), primary_key=True),
    sa.Column("credentials", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("updated_at", sa.String(32), nullable=False),
)
sa.Table(
    "sp_connection_errors",
    tables,
    sa.Column("integration", sa.String(255), primary_key=True),
    sa.Column("connection_id", sa.String(255), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("subject", sa.String(600), primary_key=True),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("log_id", sa.String(64), nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
)


def upgrade() -> None:
    bind = op.get_bind()
    present = {column["name"] for column in sa.inspect(bind).get_columns("sp_connections")}
    for column in new_columns():
        if column.name not in present:
            op.add_column("sp_connections", column)
    tables.create_all(bind, checkfirst=True)


def downgrade() -> None:
    op.drop_table("sp_connection_errors")
    op.drop_table("sp_integration_credentials")
    for column in reversed(new_columns()):
        op.drop_column("sp_connections", column.name)
