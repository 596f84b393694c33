"""Shared fixtures: the sync_pipeline database (SQLite, or PostgreSQL when configured), a temporary
Dagster instance on the same backend, and fake provider servers on 127.0.0.1.

Set SYNC_PIPELINE_TEST_DATABASE_URL (e.g. postgresql+psycopg2://postgres@127.0.0.1:5432/postgres) to run
the whole suite on PostgreSQL: a fresh database is created for the session and dropped after it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from dagster import DagsterInstance
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from sync_pipeline.integrations import load_registry
from sync_pipeline.settings import normalize_database_url, render_instance_yaml
from sync_pipeline.store import Store, checked_store, store_for
from sync_pipeline_tests.acme import registry as acme_registry
from sync_pipeline_tests.fakes.acme import AcmeApi
from sync_pipeline_tests.fakes.receiver import WebhookReceiver, served_receiver
from sync_pipeline_tests.fakes.server import ServedApp
from sync_pipeline_tests.harness import SyncHarness

REPO = Path(__file__).resolve().parents[1]
# Every sync the tests run, built in or the test integration: their dynamic partitions are wiped between tests.
PARTITIONS_DEFINITIONS = sorted({sync.qualified_name for reg in (acme_registry, load_registry("")) for sync in reg.syncs()})
SERVER_URL = os.environ.get("SYNC_PIPELINE_TEST_DATABASE_URL")


def pytest_report_header(config) -> str:
    if SERVER_URL:
        return f"sync_pipeline database: PostgreSQL ({make_url(normalize_database_url(SERVER_URL)).host})"
    return "sync_pipeline database: SQLite (set SYNC_PIPELINE_TEST_DATABASE_URL to also run on PostgreSQL)"


def pytest_collection_modifyitems(config, items) -> None:
    """Tests marked postgres_only check what exists only on a PostgreSQL server (its connections, pooling):
    on the SQLite pass they are deselected, not skipped, since there is nothing they could check."""
    if SERVER_URL:
        return
    deselected = [item for item in items if item.get_closest_marker("postgres_only")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item not in deselected]


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> Iterator[str]:
    """The database of this test session: a temporary SQLite file, or a fresh PostgreSQL database."""
    if not SERVER_URL:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'sync_pipeline.db'}"
        return
    try:
        with server_database("sp_test") as url:
            yield url
    finally:
        checked_store.cache_clear()
        store_for.cache_clear()


@contextmanager
def server_database(prefix: str) -> Iterator[str]:
    """A new database on the PostgreSQL server of SYNC_PIPELINE_TEST_DATABASE_URL, dropped afterwards."""
    server = make_url(normalize_database_url(SERVER_URL))
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def store(database_url: str) -> Store:
    """The sync_pipeline database, emptied before each test."""
    shared = store_for(database_url)
    shared.empty()
    return shared


@pytest.fixture(scope="session")
def _session_instance(database_url: str, tmp_path_factory) -> Iterator[DagsterInstance | None]:
    """On PostgreSQL one instance serves the session (wiped per test): its schema costs seconds to create."""
    if not SERVER_URL:
        yield None
        return
    home = tmp_path_factory.mktemp("dagster_home")
    yield _make_instance(home, database_url)


@pytest.fixture
def instance(_session_instance, database_url: str, tmp_path, monkeypatch) -> Iterator[DagsterInstance]:
    """A temporary Dagster instance on the session's backend, with the repository's dagster.yaml."""
    monkeypatch.setenv("SYNC_PIPELINE_DATABASE_URL", database_url)
    if _session_instance is None:
        home = tmp_path / "dagster_home"
        home.mkdir()
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        with _make_instance(home, database_url) as fresh:
            yield fresh
        return
    _wipe(_session_instance)
    yield _session_instance


def _make_instance(home: Path, database_url: str) -> DagsterInstance:
    template = (REPO / "dagster.yaml").read_text()
    (home / "dagster.yaml").write_text(render_instance_yaml(template, database_url if SERVER_URL else None))
    previous = os.environ.get("SYNC_PIPELINE_DATABASE_URL")
    os.environ["SYNC_PIPELINE_DATABASE_URL"] = database_url
    try:
        return DagsterInstance.from_config(str(home))
    finally:
        if previous is None:
            os.environ.pop("SYNC_PIPELINE_DATABASE_URL", None)
        else:
            os.environ["SYNC_PIPELINE_DATABASE_URL"] = previous


def _wipe(instance: DagsterInstance) -> None:
    instance.wipe()
    for name in PARTITIONS_DEFINITIONS:  # dynamic partitions outlive wipe(): clear them too
        for key in instance.get_dynamic_partitions(name):
            instance.delete_dynamic_partition(name, key)
    for sensor_state in instance.all_instigator_state():
        instance.delete_instigator_state(sensor_state.instigator_origin_id, sensor_state.selector_id)


@pytest.fixture(autouse=True)
def _private_webhook_urls(monkeypatch) -> None:
    """The suite's webhook receivers listen on 127.0.0.1, which webhook_url_override may reach only when allowed.
    Tests of the refusal itself unset it."""
    monkeypatch.setenv("SYNC_PIPELINE_ALLOW_PRIVATE_WEBHOOK_URLS", "true")


@pytest.fixture
def acme() -> Iterator[AcmeApi]:
    """The generic fake provider of the engine tests, served on 127.0.0.1."""
    api = AcmeApi()
    with ServedApp(api) as served:
        api.url = served.url
        yield api


@pytest.fixture
def harness(instance, store, database_url) -> SyncHarness:
    """Runs the test integration `acme` (see acme.py) against the session's database and instance."""
    return SyncHarness(instance, store, database_url, acme_registry)


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A real HTTP receiver for webhooks to the app on 127.0.0.1; its `url` is the webhook URL."""
    with served_receiver() as receiver:
        yield receiver
