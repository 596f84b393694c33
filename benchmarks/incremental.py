"""An incremental run: 10,000 changed records saved into a cache that already holds 1,000,000.

The cache is filled first (not timed), then the incremental sync runs through the SDK: the figure is
the sync itself, outside Dagster's run launch. With dlt installed (`pip install -e '.[bench]'`), the
same 10,000 rows are merged by dlt into a DuckDB table of the same 1,000,000 rows, for comparison.

    python benchmarks/incremental.py
    python benchmarks/incremental.py --cached 100000 --changed 1000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from support import PAGE, BenchContact, backends, database, dlt_available, record  # a sibling module of this script


def changed_pages(cached: int, changed: int):
    step = max(1, cached // changed)
    batch = []
    for n in range(0, cached, step)[:changed]:
        batch.append(record(n, version=2) | {"last_name": f"Changed{n}"})
        if len(batch) == PAGE:
            yield batch
            batch = []
    if batch:
        yield batch


def all_pages(cached: int):
    for start in range(0, cached, PAGE):
        yield [record(n, version=1) for n in range(start, min(cached, start + PAGE))]


def measure_ours(url: str, cached: int, changed: int) -> float:
    from sync_pipeline.sdk import Integration
    from sync_pipeline.sdk.runner import PartitionState, run_sync
    from sync_pipeline.store import Connection, Store, StreamKey, utcnow

    bench = Integration("bench", base_url="http://127.0.0.1:9")

    @bench.sync(models=[BenchContact], sync_type="incremental")
    def contacts(ctx) -> None:
        source = changed_pages(cached, changed) if ctx.last_sync_date else all_pages(cached)
        for page in source:
            ctx.batch_save(page, BenchContact)

    store = Store.from_url(url)
    connection = Connection("bench", "conn")
    run_sync(contacts, connection, "base", store.records, PartitionState())
    assert store.records.count_live(StreamKey("bench", "conn", "BenchContact")) == cached
    started = time.perf_counter()
    outcome = run_sync(contacts, connection, "base", store.records, PartitionState(last_sync_date=utcnow()))
    seconds = time.perf_counter() - started
    assert outcome.counts["BenchContact"].updated == changed, outcome.counts
    return seconds


def measure_dlt(workdir: str, cached: int, changed: int) -> float:
    import dlt

    os.environ["RUNTIME__LOG_LEVEL"] = "WARNING"
    pipeline = dlt.pipeline(
        pipeline_name="bench_incremental",
        destination=dlt.destinations.duckdb(str(Path(workdir) / "dlt_incremental.duckdb")),
        dataset_name="contacts_data",
        pipelines_dir=workdir,
    )

    def load(source) -> None:
        resource = dlt.resource(source, name="contacts", write_disposition="merge", primary_key="id")
        pipeline.run(resource, loader_file_format="parquet")

    load(all_pages(cached))
    started = time.perf_counter()
    load(changed_pages(cached, changed))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cached", type=int, default=1_000_000)
    parser.add_argument("--changed", type=int, default=10_000)
    parser.add_argument("--no-dlt", action="store_true")
    args = parser.parse_args()
    print(f"incremental run: {args.changed:,} changed records into a cache of {args.cached:,}")
    with tempfile.TemporaryDirectory() as workdir:
        for name, server in backends():
            with database(server) as url:
                seconds = measure_ours(url, args.cached, args.changed)
            print(f"  sync_pipeline, {name:<10} {seconds:6.3f} s  ({args.changed / seconds:,.0f} rec/s)")
        if not args.no_dlt and dlt_available():
            seconds = measure_dlt(workdir, args.cached, args.changed)
            print(f"  dlt merge, parquet -> DuckDB {seconds:6.3f} s")


if __name__ == "__main__":
    main()
