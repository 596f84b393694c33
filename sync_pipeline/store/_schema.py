"""Tables of the sync_pipeline database (SQLAlchemy Core, portable between SQLite and PostgreSQL).

This is the schema the code reads and writes; `store/migrations` creates and upgrades databases to it
(a change here needs a migration there: a test compares the two).

Timestamps are stored as fixed-width ISO-8601 UTC text (`2026-11-24T12:00:00.000000Z`): they sort and
compare correctly as text on both databases and cost no conversion on the bulk write path.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

Timestamp = String(32)

# Record ids are opaque: compared and ordered byte by byte, as SQLite does. On PostgreSQL that is the "C"
# collation; a locale's (even C.UTF-8) goes through strcoll on every comparison of every index lookup.
RecordId = String(255).with_variant(String(255, collation="C"), "postgresql")

connections = Table(
    "sp_connections",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("integration", String(255), nullable=False),
    Column("connection_id", String(255), nullable=False),
    Column("credentials", Text, nullable=False),  # JSON, Fernet-encrypted when a key is configured
    Column("connection_config", Text, nullable=False),  # JSON
    Column("metadata", Text, nullable=False),  # JSON
    Column("webhook_url_override", Text),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("last_fetched_at", Timestamp),
    # Added by migration 0006 (nullable or with a server default, so existing rows need nothing).
    Column("tags", JSON),  # {key: value}, keys lowercased as Nango does; JSON so filters run in SQL
    Column("end_user", JSON),  # {id, email, display_name, tags, organization}
    # Grows with every change of the credentials: a token refresh saves only over the version it read.
    Column("credentials_version", Integer, nullable=False, server_default=text("0")),
    # A refresh in progress holds a lease (owner, until), so concurrent runs refresh a token once.
    Column("refresh_owner", String(64)),
    Column("refresh_until", Timestamp),
    UniqueConstraint("integration", "connection_id", name="uq_sp_connections"),
)

# OAuth client credentials of an integration (client id and secret, or a GitHub App's id and key).
integration_credentials = Table(
    "sp_integration_credentials",
    metadata,
    Column("integration", String(255), primary_key=True),
    Column("credentials", Text, nullable=False),  # JSON, Fernet-encrypted when a key is configured
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)

# What is wrong with a connection, as `GET /connections` shows it in `errors`: its credentials (kind
# `auth`, subject "") and each sync partition whose last run failed (kind `sync`, subject its id).
connection_errors = Table(
    "sp_connection_errors",
    metadata,
    Column("integration", String(255), primary_key=True),
    Column("connection_id", String(255), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("subject", String(600), primary_key=True),
    Column("message", Text, nullable=False),
    Column("log_id", String(64), nullable=False),  # the Dagster run id, where there is one
    Column("created_at", Timestamp, nullable=False),
)

# One row per dynamic partition of a sync: its schedule state. Dagster owns the partition itself.
partitions = Table(
    "sp_partitions",
    metadata,
    Column("integration", String(255), primary_key=True),
    Column("sync_name", String(255), primary_key=True),
    Column("partition_key", String(600), primary_key=True),
    Column("connection_id", String(255), nullable=False),
    Column("variant", String(255), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("paused", Boolean, nullable=False, default=False),
    Column("frequency_seconds", Integer),  # per-connection override; NULL: the sync's default
    Column("frequency_cron", String(255)),  # per-connection override as a cron expression (UTC), instead
    Column("next_due_at", Timestamp),  # NULL: never scheduled (runs at once when auto_start)
    Column("trigger_mode", String(40)),  # a pending manual trigger
    Column("triggered_at", Timestamp),
    Column("failures", Integer, nullable=False, default=0, server_default="0"),  # consecutive failed runs
    Column("failed_at", Timestamp),  # when the last of them failed
    Column("retry_at", Timestamp),  # when the scheduler retries it (next_due_at is brought forward to it)
    Column("retry_mode", String(40)),  # the failed run's mode, which the retry repeats
    Index("ix_sp_partitions_due", "paused", "next_due_at"),
)

# The unfinished run of a partition: its checkpoint, so a crash resumes from it. One row per partition,
# rewritten at each checkpoint and removed when the run's materialization is recorded (Dagster's event
# log then holds its final checkpoint). A table of its own, not an event per page: a 30,000-record run
# used to write 300 observation events, burying the run's materializations in the UI.
run_progress = Table(
    "sp_run_progress",
    metadata,
    Column("integration", String(255), primary_key=True),
    Column("sync_name", String(255), primary_key=True),
    Column("partition_key", String(600), primary_key=True),
    Column("generation", String(64), nullable=False),
    Column("started_at", Timestamp, nullable=False),
    Column("checkpoint", Text),  # JSON; NULL: no checkpoint saved yet
    Column("updated_at", Timestamp, nullable=False),
)

# A (connection, model, variant) of one integration; `last_seq` hands out record cursors.
streams = Table(
    "sp_streams",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("integration", String(255), nullable=False),
    Column("connection_id", String(255), nullable=False),
    Column("model", String(255), nullable=False),
    Column("variant", String(255), nullable=False),
    Column("last_seq", BigInteger, nullable=False, default=0),
    Column("live_count", BigInteger, nullable=False, default=0),  # records not deleted, kept by each write
    UniqueConstraint("integration", "connection_id", "model", "variant", name="uq_sp_streams"),
)

records = Table(
    "sp_records",
    metadata,
    Column("stream_id", Integer, primary_key=True),
    Column("record_id", RecordId, primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("payload", Text),  # NULL once pruned
    Column("hash", String(32), nullable=False),
    Column("first_seen_at", Timestamp, nullable=False),
    Column("last_modified_at", Timestamp, nullable=False),
    Column("last_action", String(8), nullable=False),
    Column("deleted_at", Timestamp),
    Column("pruned_at", Timestamp),
    Index("ix_sp_records_stream_seq", "stream_id", "seq", unique=True),
)

# What a full-refresh run (generation) saw unchanged, for track_deletes: one row per saved batch, its ids
# as a JSON array. A batch costs one row, not one B-tree write per record (see benchmarks/README.md:
# marking records seen one by one took a fifth of a large refresh). Rows outlive a crash, so a resumed run still knows what
# its first attempt saw; a stream's rows of earlier generations are dropped when a later one finishes.
seen_batches = Table(
    "sp_seen_batches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("stream_id", Integer, nullable=False),
    Column("generation", String(64), nullable=False),
    Column("record_ids", Text, nullable=False),
    Index("ix_sp_seen_batches_run", "stream_id", "generation"),
)

# Change counts of a stream's current run generation: a resumed run adds to its first attempt's, so the
# run's webhook counts every attempt. Written in each batch's own transaction; replaced by a new generation.
run_tallies = Table(
    "sp_run_tallies",
    metadata,
    Column("stream_id", Integer, primary_key=True, autoincrement=False),
    Column("generation", String(64), nullable=False),
    Column("low_watermark", BigInteger, nullable=False),  # the stream's last_seq when the first attempt began
    Column("added", BigInteger, nullable=False, default=0, server_default="0"),
    Column("updated", BigInteger, nullable=False, default=0, server_default="0"),
    Column("deleted", BigInteger, nullable=False, default=0, server_default="0"),
)

# Webhooks to the app: one row per delivery, retried until delivered or given up. Deliveries of one sync
# partition go out in `event_seq` order (the Dagster event's storage id): one waits while an earlier is pending.
deliveries = Table(
    "sp_webhook_deliveries",
    metadata,
    Column("delivery_id", String(64), primary_key=True),
    Column("url", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(16), nullable=False),  # pending, delivered, failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Timestamp, nullable=False),
    Column("last_error", Text),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("partition_id", String(700)),  # NULL for deliveries logged before ordering: sent in any order
    Column("event_seq", BigInteger),
    Index("ix_sp_deliveries_due", "status", "next_attempt_at"),
    Index("ix_sp_deliveries_order", "status", "partition_id", "event_seq"),
)
