"""Baseline: the layout of every database made before the schema was versioned (main at 65c12d8).

A frozen copy of that day's tables, not an import of `schema.py`, which moves on. Tables are created only
where missing, so a database of that layout (or an older one that lacks a newer table) is brought to it
without touching its rows; later revisions change it from there.
"""

from alembic import op
from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, MetaData, String, Table, Text, UniqueConstraint

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None

baseline = MetaData()
Timestamp = String(32)
RecordId = String(255).with_variant(String(255, collation="C"), "postgresql")

Table(
    "sp_connections",
    baseline,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("integration", String(255), nullable=False),
    Column("connection_id", String(255), nullable=False),
    Column("credentials", Text, nullable=False),
    Column("connection_config", Text, nullable=False),
    Column("metadata", Text, nullable=False),
    Column("webhook_url_override", Text),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("last_fetched_at", Timestamp),
    UniqueConstraint("integration", "connection_id", name="uq_sp_connections"),
)
Table(
    "sp_partitions",
    baseline,
    Column("integration", String(255), primary_key=True),
    Column("sync_name", String(255), primary_key=True),
    Column("partition_key", String(600), primary_key=True),
    Column("connection_id", String(255), nullable=False),
    Column("variant", String(255), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("paused", Boolean, nullable=False),
    Column("frequency_seconds", Integer),
    Column("next_due_at", Timestamp),
    Column("trigger_mode", String(40)),
    Column("triggered_at", Timestamp),
    Index("ix_sp_partitions_due", "paused", "next_due_at"),
)
Table(
    "sp_streams",
    baseline,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("integration", String(255), nullable=False),
    Column("connection_id", String(255), nullable=False),
    Column("model", String(255), nullable=False),
    Column("variant", String(255), nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("live_count", BigInteger, nullable=False),
    UniqueConstraint("integration", "connection_id", "model", "variant", name="uq_sp_streams"),
)
Table(
    "sp_records",
    baseline,
    Column("stream_id", Integer, primary_key=True),
    Column("record_id", RecordId, primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("payload", Text),
    Column("hash", String(32), nullable=False),
    Column("first_seen_at", Timestamp, nullable=False),
    Column("last_modified_at", Timestamp, nullable=False),
    Column("last_action", String(8), nullable=False),
    Column("deleted_at", Timestamp),
    Column("pruned_at", Timestamp),
    Index("ix_sp_records_stream_seq", "stream_id", "seq", unique=True),
)
Table(
    "sp_seen_batches",
    baseline,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("stream_id", Integer, nullable=False),
    Column("generation", String(64), nullable=False),
    Column("record_ids", Text, nullable=False),
    Index("ix_sp_seen_batches_run", "stream_id", "generation"),
)
Table(
    "sp_webhook_deliveries",
    baseline,
    Column("delivery_id", String(64), primary_key=True),
    Column("url", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Timestamp, nullable=False),
    Column("last_error", Text),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Index("ix_sp_deliveries_due", "status", "next_attempt_at"),
)


def upgrade() -> None:
    baseline.create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    raise NotImplementedError("the baseline is where every database starts; there is nothing before it")
