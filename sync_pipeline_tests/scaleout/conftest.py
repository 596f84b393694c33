"""Scale-out runs on PostgreSQL only (workers share Dagster's storage and the records cache): on the SQLite pass
these tests are deselected, not skipped, since there is nothing they could check there."""

from __future__ import annotations

from sync_pipeline_tests.conftest import SERVER_URL


def pytest_collection_modifyitems(config, items) -> None:
    if SERVER_URL:
        return
    here = __file__.rsplit("/", 1)[0]
    deselected = [item for item in items if str(item.fspath).startswith(here)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item not in deselected]
