"""Store fixtures: an empty database of the session's kind, for tests that watch a schema being made."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from sync_pipeline.settings import normalize_database_url
from sync_pipeline_tests.conftest import SERVER_URL


@pytest.fixture
def empty_database_url(tmp_path) -> Iterator[str]:
    """A database with no table at all: a new SQLite file, or a new PostgreSQL database dropped after the test."""
    if not SERVER_URL:
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server = make_url(normalize_database_url(SERVER_URL))
    name = f"sp_empty_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
