"""Connections in the database: a database from before the new columns is upgraded in place, and the refresh
lease admits one holder at a time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, create_engine, insert

from sync_pipeline.settings import normalize_database_url
from sync_pipeline.store import Connection, Store, create_database_engine, utcnow
from sync_pipeline_tests.conftest import SERVER_URL, server_database


@pytest.fixture
def empty_database_url(tmp_path) -> Iterator[str]:
    """A database of its own: a new SQLite file, or a new PostgreSQL database dropped afterwards."""
    if not SERVER_URL:
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    with server_database("sp_upgrade") as url:
        yield url


def test_a_connections_table_from_before_tags_and_refresh_gets_the_new_columns_and_keeps_its_rows(empty_database_url):
    old = MetaData()
    table = Table(
        "sp_connections", old,
        Column("id", Integer, primary_key=True, autoincrement=True),
        *(Column(name, String(255), nullable=False) for name in ("integration", "connection_id")),
        *(Column(name, Text, nullable=False) for name in ("credentials", "connection_config", "metadata")),
        Column("webhook_url_override", Text),
        *(Column(name, String(32), nullable=False) for name in ("created_at", "updated_at")),
        Column("last_fetched_at", String(32)),
    )  # fmt: skip
    engine = create_engine(normalize_database_url(empty_database_url))
    old.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(table).values(
            integration="slack", connection_id="team-1", credentials='{"type": "NONE"}', connection_config="{}",
            metadata='{"a": 1}', created_at="2026-01-01T00:00:00.000000Z", updated_at="2026-01-01T00:00:00.000000Z",
        ))  # fmt: skip
    engine.dispose()

    store = Store(create_database_engine(empty_database_url))
    try:
        kept = store.connections.get("slack", "team-1")
        assert (kept.metadata, kept.tags, kept.end_user, kept.credentials_version) == ({"a": 1}, {}, None, 0)
        assert store.connections.set_profile("slack", "team-1", tags={"plan": "pro"})
        assert store.connections.upsert(Connection("slack", "team-1", credentials={"type": "NONE"})).credentials_version == 1
        assert store.connections.get("slack", "team-1").tags == {"plan": "pro"}, "an import without tags keeps them"
    finally:
        store.engine.dispose()


def test_the_refresh_lease_has_one_holder_until_released_or_expired(store):
    store.connections.upsert(Connection("slack", "team-1", credentials={"type": "NONE"}))
    now = utcnow()
    lease = ("slack", "team-1")

    assert store.connections.try_lease(*lease, "run-a", now, now + timedelta(seconds=60))
    assert not store.connections.try_lease(*lease, "run-b", now, now + timedelta(seconds=60))
    assert store.connections.try_lease(*lease, "run-b", now + timedelta(seconds=61), now + timedelta(seconds=120)), (
        "a crashed holder's lease expires"
    )
    store.connections.release_lease(*lease, "run-a")  # not the holder any more: changes nothing
    assert not store.connections.try_lease(*lease, "run-a", now + timedelta(seconds=62), now + timedelta(seconds=90))
    store.connections.release_lease(*lease, "run-b")
    assert store.connections.try_lease(*lease, "run-a", now, now + timedelta(seconds=60))


def test_refreshed_credentials_are_saved_only_over_the_version_read(store):
    read = store.connections.upsert(Connection("slack", "team-1", credentials={"type": "OAUTH2", "access_token": "a"}))
    store.connections.upsert(Connection("slack", "team-1", credentials={"type": "OAUTH2", "access_token": "imported"}))

    assert store.connections.save_refreshed(read, {"type": "OAUTH2", "access_token": "refreshed"}, {}, "run-a") is None
    assert store.connections.get("slack", "team-1").credentials["access_token"] == "imported"
    latest = store.connections.get("slack", "team-1")
    saved = store.connections.save_refreshed(latest, {"type": "OAUTH2", "access_token": "refreshed"}, {"x": 1}, "run-a")
    assert saved.credentials["access_token"] == "refreshed" and saved.config == {"x": 1}
    assert saved.credentials_version == latest.credentials_version + 1
