"""Dagster's PostgreSQL storages with pooled connections, for processes that write many small runs' events.

dagster-postgres opens a new PostgreSQL connection for every statement outside the webserver (NullPool: an
instance holds none between calls). A small sync run writes about 15 events and reads its run a few times,
so its worker spent a quarter of its time opening connections (each a backend process that PostgreSQL forks),
and the daemon a third of its busy time (docs/deploy.md has the profiles). These keep a few connections per
process, replaced hourly, as dagster-postgres itself does for the webserver.

One pool per process and database, shared by every instance the process builds: the daemon's code server builds
a new DagsterInstance for each sensor evaluation, and a pool of its own per instance would open connections
each tick and hold them until garbage collection (28 connections in the code server alone during a burst).
"""

from __future__ import annotations

import os
from threading import Lock

from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.run_storage import PostgresRunStorage
from dagster_postgres.schedule_storage import PostgresScheduleStorage
from dagster_postgres.utils import create_pg_engine, get_token_provider_from_config, pg_url_from_config
from sqlalchemy.engine import Engine

# Opened on demand, kept up to pool_size (the daemon's threads: sensors, submit and dequeue workers); no pre-ping,
# which cost a round trip per statement (18% of the daemon's samples), as dagster-postgres's webserver pool.
POOL = {"pool_size": 8, "max_overflow": 8, "pool_recycle": 3600}

_engines: dict[tuple[int, str], Engine] = {}
_tables_checked: set[tuple[int, str, type]] = set()
_lock = Lock()


class _Pooled:
    """Built like dagster-postgres builds its storages (whose from_config_value names its own class), then pooled."""

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        url = pg_url_from_config(config_value)
        # Keyed by process: a pool's connections must not cross a fork (Celery's prefork pool processes).
        key = (os.getpid(), url)
        with _lock:
            # The tables' existence is checked (a catalog query) by the first instance of the process only.
            check_tables = config_value.get("should_autocreate_tables", True) and (*key, cls) not in _tables_checked
            storage = cls(
                inst_data=inst_data,
                postgres_url=url,
                should_autocreate_tables=check_tables,
                token_provider=get_token_provider_from_config(config_value),
            )
            _tables_checked.add((*key, cls))
            storage._engine.dispose()  # the NullPool engine dagster-postgres made; it holds nothing
            if key not in _engines:
                _engines[key] = create_pg_engine(url, storage._token_provider, isolation_level="AUTOCOMMIT", **POOL)
            storage._engine = _engines[key]
        return storage


class PooledPostgresRunStorage(_Pooled, PostgresRunStorage):
    _has_stats_columns: dict[str, bool] = {}  # by database, for the process

    def has_run_stats_index_cols(self) -> bool:
        """Asked on every run query and answered by reflecting the runs table: 12% of the daemon's samples while
        it created runs for 200 new connections. The columns change only through `dagster instance migrate`,
        after which processes are restarted."""
        if self.postgres_url not in self._has_stats_columns:
            self._has_stats_columns[self.postgres_url] = super().has_run_stats_index_cols()
        return self._has_stats_columns[self.postgres_url]


class PooledPostgresEventLogStorage(_Pooled, PostgresEventLogStorage):
    pass


class PooledPostgresScheduleStorage(_Pooled, PostgresScheduleStorage):
    pass
