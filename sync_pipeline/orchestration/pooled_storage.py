"""Dagster's PostgreSQL storages with pooled connections, for processes that write many small runs' events.

dagster-postgres opens a new PostgreSQL connection for every statement outside the webserver (NullPool: an
instance holds none between calls). A small sync run writes about 15 events and reads its run a few times,
so its worker spent a quarter of its time opening connections (each a backend process that PostgreSQL forks),
and the daemon a third of its busy time (docs/deploy.md has the profiles). These keep a few connections per
process, replaced hourly, as dagster-postgres itself does for the webserver.
"""

from __future__ import annotations

from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.run_storage import PostgresRunStorage
from dagster_postgres.schedule_storage import PostgresScheduleStorage
from dagster_postgres.utils import create_pg_engine

# Opened on demand, kept up to pool_size (the daemon's threads: sensors, submit and dequeue workers); no pre-ping,
# which cost a round trip per statement (18% of the daemon's samples), as dagster-postgres's webserver pool.
POOL = {"pool_size": 8, "max_overflow": 8, "pool_recycle": 3600}


def _pooled(storage):
    storage._engine.dispose()  # noqa: SLF001 (the NullPool engine dagster-postgres made; it holds nothing)
    storage._engine = create_pg_engine(storage.postgres_url, storage._token_provider, isolation_level="AUTOCOMMIT", **POOL)  # noqa: SLF001
    return storage


# dagster-postgres builds its own classes in from_config_value: each of ours pools the engine of the one it built.
class PooledPostgresRunStorage(PostgresRunStorage):
    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return _pooled(super().from_config_value(inst_data, config_value))


class PooledPostgresEventLogStorage(PostgresEventLogStorage):
    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return _pooled(super().from_config_value(inst_data, config_value))


class PooledPostgresScheduleStorage(PostgresScheduleStorage):
    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return _pooled(super().from_config_value(inst_data, config_value))
