"""Records as asset inputs: a downstream asset reads N cached Slack users through the `sync_records` IO manager.

For each size, N users are written into the cache (not timed), then a downstream asset of the same
partition reads them twice through Dagster (`materialize` on an ephemeral instance):
as one DataFrame, then as an iterator of 10,000-row pages. Printed: rows/s of each form (a run without
tracemalloc), and the peak of Python allocations while reading (a second run, with tracemalloc).

    python benchmarks/records_input.py
    python benchmarks/records_input.py --records 100000 300000
"""

from __future__ import annotations

import argparse
import collections.abc
import hashlib
import json
import time
import tracemalloc

from support import backends, database  # a sibling module of this script


def fill(url: str, count: int) -> None:
    from sync_pipeline.store import PreparedRecord, Store, StreamKey, utcnow

    store = Store.from_url(url)
    key = StreamKey("slack", "team-1", "SlackUser")
    for start in range(0, count, 5_000):
        batch = []
        for n in range(start, min(start + 5_000, count)):
            payload = json.dumps(
                {"id": f"U{n:08d}", "team_id": "T1", "name": f"user{n}", "real_name": f"User {n}",
                 "email": f"user{n}@example.com", "timezone": "Europe/Paris", "is_admin": n % 50 == 0,
                 "updated_at": "2026-11-25T12:00:00+00:00"}
            )
            batch.append(PreparedRecord(f"U{n:08d}", payload, hashlib.blake2b(payload.encode(), digest_size=16).hexdigest()))
        store.records.save(key, batch, utcnow())
    store.engine.dispose()


def read(url: str, pages: bool, trace: bool) -> tuple[int, float, int]:
    """(rows, seconds, peak bytes) of one downstream materialization reading every record."""
    import pandas as pd
    from dagster import AssetIn, AssetKey, DagsterInstance, asset, materialize

    from sync_pipeline.integrations import load_registry
    from sync_pipeline.orchestration import IO_MANAGER_KEY, SyncRecordsIOManager, partitions_definition, sync_asset_specs

    registry = load_registry("")
    seen = {}

    @asset(
        key=AssetKey(["bench", "users"]),
        ins={"users": AssetIn(key=AssetKey(["slack", "SlackUser"]), metadata={"pages": pages})},
        partitions_def=partitions_definition(registry.find_sync("slack", "users")),
    )
    def report(users) -> None:
        frames = users if isinstance(users, collections.abc.Iterator) else [users]
        seen["rows"] = sum(len(frame) for frame in frames)

    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("slack__users", ["team-1::base"])
        if trace:
            tracemalloc.start()
        started = time.perf_counter()
        materialize(
            [*sync_asset_specs(registry), report],
            selection=[report],
            partition_key="team-1::base",
            instance=instance,
            resources={IO_MANAGER_KEY: SyncRecordsIOManager(database_url=url)},
        )
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
        tracemalloc.stop()
    del pd
    return seen["rows"], elapsed, peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, nargs="+", default=[100_000, 300_000])
    args = parser.parse_args()
    for name, server in backends():
        for count in args.records:
            with database(server) as url:
                fill(url, count)
                for pages in (False, True):
                    rows, seconds, _ = read(url, pages, trace=False)
                    _, _, peak = read(url, pages, trace=True)
                    form = "pages of 10,000" if pages else "one DataFrame"
                    print(
                        f"{name:10} {count:>9,} records as {form:16}: {rows / seconds:>9,.0f} rows/s, "
                        f"peak of Python allocations {peak / 2**20:6.1f} MiB"
                    )


if __name__ == "__main__":
    main()
