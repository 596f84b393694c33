-- The sync_pipeline schema as main created it after the architecture refactor, before versioned migrations
-- (commit d2d9b70), for sqlite. Generated with SQLAlchemy's CreateTable/CreateIndex from sync_pipeline/store/_schema.py of that commit.

CREATE TABLE sp_connections (
	id INTEGER NOT NULL, 
	integration VARCHAR(255) NOT NULL, 
	connection_id VARCHAR(255) NOT NULL, 
	credentials TEXT NOT NULL, 
	connection_config TEXT NOT NULL, 
	metadata TEXT NOT NULL, 
	webhook_url_override TEXT, 
	created_at VARCHAR(32) NOT NULL, 
	updated_at VARCHAR(32) NOT NULL, 
	last_fetched_at VARCHAR(32), 
	PRIMARY KEY (id), 
	CONSTRAINT uq_sp_connections UNIQUE (integration, connection_id)
);

CREATE TABLE sp_partitions (
	integration VARCHAR(255) NOT NULL, 
	sync_name VARCHAR(255) NOT NULL, 
	partition_key VARCHAR(600) NOT NULL, 
	connection_id VARCHAR(255) NOT NULL, 
	variant VARCHAR(255) NOT NULL, 
	created_at VARCHAR(32) NOT NULL, 
	paused BOOLEAN NOT NULL, 
	frequency_seconds INTEGER, 
	next_due_at VARCHAR(32), 
	trigger_mode VARCHAR(40), 
	triggered_at VARCHAR(32), 
	PRIMARY KEY (integration, sync_name, partition_key)
);

CREATE INDEX ix_sp_partitions_due ON sp_partitions (paused, next_due_at);

CREATE TABLE sp_records (
	stream_id INTEGER NOT NULL, 
	record_id VARCHAR(255) NOT NULL, 
	seq BIGINT NOT NULL, 
	payload TEXT, 
	hash VARCHAR(32) NOT NULL, 
	first_seen_at VARCHAR(32) NOT NULL, 
	last_modified_at VARCHAR(32) NOT NULL, 
	last_action VARCHAR(8) NOT NULL, 
	deleted_at VARCHAR(32), 
	pruned_at VARCHAR(32), 
	PRIMARY KEY (stream_id, record_id)
);

CREATE UNIQUE INDEX ix_sp_records_stream_seq ON sp_records (stream_id, seq);

CREATE TABLE sp_run_progress (
	integration VARCHAR(255) NOT NULL, 
	sync_name VARCHAR(255) NOT NULL, 
	partition_key VARCHAR(600) NOT NULL, 
	generation VARCHAR(64) NOT NULL, 
	started_at VARCHAR(32) NOT NULL, 
	checkpoint TEXT, 
	updated_at VARCHAR(32) NOT NULL, 
	PRIMARY KEY (integration, sync_name, partition_key)
);

CREATE TABLE sp_seen_batches (
	id INTEGER NOT NULL, 
	stream_id INTEGER NOT NULL, 
	generation VARCHAR(64) NOT NULL, 
	record_ids TEXT NOT NULL, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_sp_seen_batches_run ON sp_seen_batches (stream_id, generation);

CREATE TABLE sp_streams (
	id INTEGER NOT NULL, 
	integration VARCHAR(255) NOT NULL, 
	connection_id VARCHAR(255) NOT NULL, 
	model VARCHAR(255) NOT NULL, 
	variant VARCHAR(255) NOT NULL, 
	last_seq BIGINT NOT NULL, 
	live_count BIGINT NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_sp_streams UNIQUE (integration, connection_id, model, variant)
);

CREATE TABLE sp_webhook_deliveries (
	delivery_id VARCHAR(64) NOT NULL, 
	url TEXT NOT NULL, 
	body TEXT NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	attempts INTEGER NOT NULL, 
	next_attempt_at VARCHAR(32) NOT NULL, 
	last_error TEXT, 
	created_at VARCHAR(32) NOT NULL, 
	updated_at VARCHAR(32) NOT NULL, 
	PRIMARY KEY (delivery_id)
);

CREATE INDEX ix_sp_deliveries_due ON sp_webhook_deliveries (status, next_attempt_at);
