"""Store fixtures: an empty database of the session's kind, for tests that watch a schema being made."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sync_pipeline_tests.conftest import SERVER_URL, server_database


@pytest.fixture
def empty_database_url(tmp_path) -> Iterator[str]:
    """A database with no table at all: a new SQLite file, or a new PostgreSQL database dropped after the test."""
    if not SERVER_URL:
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    with server_database("sp_empty") as url:
        yield url
