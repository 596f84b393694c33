"""Dagster's PostgreSQL storages as our deployments configure them: pooled, one pool per process."""

from __future__ import annotations

import pytest
from dagster import AssetKey, DagsterInstance, RunsFilter
from sqlalchemy import create_engine, text

from sync_pipeline.settings import render_instance_yaml
from sync_pipeline_tests.conftest import REPO, server_database

pytestmark = pytest.mark.postgres_only


def test_instances_built_per_sensor_tick_share_one_pool_of_connections(tmp_path, monkeypatch) -> None:
    """The daemon's code server builds a Dagster instance for every sensor evaluation: a hundred ticks must not
    leave a hundred sets of PostgreSQL connections open (PostgreSQL refuses clients past max_connections)."""
    with server_database("sp_pool") as url:
        monkeypatch.setenv("SYNC_PIPELINE_DATABASE_URL", url)
        (tmp_path / "dagster.yaml").write_text(render_instance_yaml((REPO / "dagster.yaml").read_text(), url))
        first = DagsterInstance.from_config(str(tmp_path))
        ticks = [DagsterInstance.from_ref(first.get_ref()) for _ in range(100)]
        for tick in ticks:  # each reads runs, events and sensor states, as a tick does, and is kept alive meanwhile
            tick.get_run_records(RunsFilter(), limit=1)
            tick.fetch_materializations(AssetKey("users"), limit=1)
            tick.all_instigator_state()
        assert _connections_to(url) <= 3
        for instance in (first, *ticks):
            instance.dispose()


def _connections_to(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            return conn.execute(text(query)).scalar()
    finally:
        engine.dispose()
