"""The schema is versioned: created and upgraded by the packaged Alembic migrations, once, under a lock."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from dagster import DagsterInstance
from sqlalchemy import create_engine, inspect, text

from sync_pipeline.store import SCHEMA_VERSION_TABLE as VERSION_TABLE
from sync_pipeline.store import SchemaTooNew, Store, StreamKey, create_database_engine, head_revision
from sync_pipeline.store import schema as metadata
from sync_pipeline.store import schema_revision as current_revision

PREVIOUS_LAYOUT = Path(__file__).with_name("previous_layout")
REPO = Path(__file__).resolve().parents[2]


def revision_rows(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())
    finally:
        engine.dispose()


def schema_differences(conn) -> list:
    """What Alembic would change to turn the database into `schema.py`'s tables: nothing, when in step."""
    return compare_metadata(MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}), metadata)


def test_a_new_database_gets_the_newest_revision_and_exactly_the_schema_the_code_uses(empty_database_url):
    store = Store.from_url(empty_database_url)
    try:
        with store.engine.connect() as conn:
            assert current_revision(conn) == head_revision()
            differences = schema_differences(conn)
        assert differences == []
    finally:
        store.engine.dispose()


# Layouts main created with `create_all` before the schema was versioned: before and after the refactor,
# and after issue 13 added connection auth columns and tables.
@pytest.mark.parametrize("commit", ["65c12d8", "d2d9b70", "dbfb180"])
def test_a_database_of_a_previous_layout_is_upgraded_and_keeps_its_rows(empty_database_url, commit):
    engine = create_engine(empty_database_url)
    layout = (PREVIOUS_LAYOUT / f"{engine.dialect.name}-{commit}.sql").read_text()
    with engine.begin() as conn:
        for statement in layout.split(";\n"):
            if "CREATE" in statement:
                conn.exec_driver_sql(statement)
        conn.execute(text(
            "INSERT INTO sp_connections (integration, connection_id, credentials, connection_config, metadata,"
            " created_at, updated_at) VALUES ('acme', 'conn-1', '{\"type\": \"NONE\"}', '{}', '{\"plan\": \"pro\"}',"
            " '2026-11-01T00:00:00.000000Z', '2026-11-01T00:00:00.000000Z')"
        ))
        conn.execute(text(
            "INSERT INTO sp_partitions (integration, sync_name, partition_key, connection_id, variant, created_at,"
            " paused, next_due_at) VALUES ('acme', 'contacts', 'conn-1::base', 'conn-1', 'base',"
            " '2026-11-01T00:00:00.000000Z', :paused, '2026-11-02T00:00:00.000000Z')"
        ), {"paused": False})
        conn.execute(text(
            "INSERT INTO sp_streams (integration, connection_id, model, variant, last_seq, live_count)"
            " VALUES ('acme', 'conn-1', 'AcmeContact', 'base', 1, 1)"
        ))
        conn.execute(text(
            "INSERT INTO sp_records (stream_id, record_id, seq, payload, hash, first_seen_at, last_modified_at,"
            " last_action) SELECT id, 'c1', 1, '{\"id\": \"c1\"}', 'h', '2026-11-01T00:00:00.000000Z',"
            " '2026-11-01T00:00:00.000000Z', 'ADDED' FROM sp_streams"
        ))
        conn.execute(text(
            "INSERT INTO sp_webhook_deliveries (delivery_id, url, body, status, attempts, next_attempt_at,"
            " created_at, updated_at) VALUES ('m-1', 'http://127.0.0.1:9/hooks', '{}', 'pending', 2,"
            " '2026-11-01T00:00:00.000000Z', '2026-11-01T00:00:00.000000Z', '2026-11-01T00:00:00.000000Z')"
        ))
        if "sp_run_progress" in layout:
            conn.execute(text(
                "INSERT INTO sp_run_progress (integration, sync_name, partition_key, generation, started_at, checkpoint,"
                " updated_at) VALUES ('acme', 'contacts', 'conn-1::base', 'g1', '2026-11-01T00:00:00.000000Z',"
                " '{\"cursor\": \"4\"}', '2026-11-01T00:00:00.000000Z')"
            ))
        assert VERSION_TABLE not in inspect(conn).get_table_names()
    engine.dispose()

    store = Store.from_url(empty_database_url)
    try:
        assert revision_rows(empty_database_url) == [head_revision()]
        assert store.connections.get("acme", "conn-1").metadata == {"plan": "pro"}
        row = store.partitions.get("acme", "contacts", "conn-1::base")
        assert (row.next_due_at, row.failures, row.retry_at) == ("2026-11-02T00:00:00.000000Z", 0, None)
        assert store.records.count_live(StreamKey("acme", "conn-1", "AcmeContact", "base")) == 1
        if "sp_run_progress" in layout:
            assert store.partitions.progress("acme", "contacts", "conn-1::base").checkpoint == {"cursor": "4"}
        with store.engine.connect() as conn:
            differences = schema_differences(conn)
            delivery = conn.execute(text("SELECT attempts, partition_id FROM sp_webhook_deliveries")).one()
        assert differences == []
        assert tuple(delivery) == (2, None)
    finally:
        store.engine.dispose()


def test_a_database_upgraded_by_a_newer_release_is_refused_with_a_clear_error(empty_database_url):
    Store.from_url(empty_database_url).engine.dispose()
    engine = create_engine(empty_database_url)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '0099_from_the_future'"))
    engine.dispose()

    with pytest.raises(SchemaTooNew, match="'0099_from_the_future'.*newer release"):
        Store.from_url(empty_database_url)


def test_threads_starting_at_once_on_an_empty_database_all_start(empty_database_url):
    starting = threading.Barrier(8)
    errors: list[BaseException] = []
    engines = []

    def start() -> None:
        starting.wait()
        try:
            engines.append(create_database_engine(empty_database_url))
        except BaseException as error:  # noqa: BLE001 (collected for the assertion)
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert len(engines) == 8
    assert revision_rows(empty_database_url) == [head_revision()]
    for engine in engines:
        engine.dispose()


def test_processes_migrating_at_once_on_a_new_home_and_database_all_succeed(empty_database_url, tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    env = {**os.environ, "DAGSTER_HOME": str(home), "SYNC_PIPELINE_DATABASE_URL": empty_database_url}
    command = [sys.executable, "-m", "sync_pipeline.cli", "migrate"]
    processes = [
        subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(4)
    ]
    outputs = [process.communicate(timeout=300)[0] for process in processes]

    assert [process.returncode for process in processes] == [0, 0, 0, 0], outputs
    assert all(f"schema at revision {head_revision()}" in output for output in outputs)
    assert revision_rows(empty_database_url) == [head_revision()]
    monkeypatch.setenv("SYNC_PIPELINE_DATABASE_URL", empty_database_url)  # the home's dagster.yaml reads it
    with DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_runs() == []
