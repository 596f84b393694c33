"""One tick of the scheduling sensor over 10,000 partitions, 1% of them due. Target: under 2 s a tick.

The partitions are Dagster dynamic partitions of the benchmark's integration `bench` (contacts) with their schedule
rows; Dagster's storage and the sync_pipeline database share one backend, as in production.

    python benchmarks/scheduling_sensor.py                     # SQLite
    SYNC_PIPELINE_BENCH_DATABASE_URL=postgresql+psycopg2://postgres@127.0.0.1:5432/postgres \
        python benchmarks/scheduling_sensor.py                 # also PostgreSQL
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dagster import DagsterInstance, build_sensor_context  # noqa: E402
from sqlalchemy import insert, update  # noqa: E402

from sync_pipeline.keys import make_partition_key  # noqa: E402
from sync_pipeline.orchestration import build_definitions  # noqa: E402
from sync_pipeline.orchestration.scheduling import SENSOR_NAME  # noqa: E402
from sync_pipeline.store import Store, to_iso, utcnow  # noqa: E402
from sync_pipeline.store import schema  # noqa: E402

partitions = schema.tables["sp_partitions"]
from fakes import registry  # noqa: E402  (a sibling module of this script)
from support import backends, database, make_instance  # noqa: E402  (a sibling module of this script)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=10_000)
    parser.add_argument("--due-percent", type=float, default=1.0)
    args = parser.parse_args()
    for name, server in backends():
        with database(server) as url:
            run(name, url, args.partitions, args.due_percent)


def run(backend: str, url: str, total: int, due_percent: float) -> None:
    with tempfile.TemporaryDirectory() as home:
        instance = make_instance(Path(home), url, postgres=backend == "PostgreSQL")
        store = Store.from_url(url)
        defs = build_definitions(registry, database_url=url)
        keys = [make_partition_key(f"conn-{n:06d}") for n in range(total)]
        started = time.perf_counter()
        instance.add_dynamic_partitions("bench__contacts", keys)
        seed_rows(store, keys)
        setup = time.perf_counter() - started

        idle_warm = tick(instance, defs)  # warms the engine, the pool and Dagster's caches
        make_due(store, keys[:: max(1, round(100 / due_percent))])
        due_tick = tick(instance, defs)
        idle_tick = tick(instance, defs)
        print(
            f"{backend}: {total:,} partitions (setup {setup:.1f} s); "
            f"tick with {due_tick[1]} due: {due_tick[0]:.3f} s; "
            f"tick with none due: {idle_tick[0]:.3f} s (first, cold: {idle_warm[0]:.3f} s); target < 2 s"
        )
        store.engine.dispose()
        instance.dispose()


def tick(instance: DagsterInstance, defs) -> tuple[float, int]:
    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    started = time.perf_counter()
    context = build_sensor_context(instance=instance, definitions=defs, resources=defs.resources)
    result = sensor(context)
    return time.perf_counter() - started, len(result.run_requests)


def seed_rows(store: Store, keys: list[str]) -> None:
    """Schedule rows of partitions that already ran: each due an hour from now."""
    now = utcnow()
    rows = [
        {
            "integration": "bench",
            "sync_name": "contacts",
            "partition_key": key,
            "connection_id": key.split("::")[0],
            "variant": "base",
            "created_at": to_iso(now - timedelta(days=1)),
            "paused": False,
            "next_due_at": to_iso(now + timedelta(hours=1)),
        }
        for key in keys
    ]
    with store.engine.begin() as conn:
        conn.execute(insert(partitions), rows)


def make_due(store: Store, keys: list[str]) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            update(partitions)
            .where(partitions.c.partition_key.in_(keys))
            .values(next_due_at=to_iso(utcnow() - timedelta(seconds=1)))
        )


if __name__ == "__main__":
    main()
