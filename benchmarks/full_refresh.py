"""Full refresh through the SDK into the records cache, against a bare loop and dlt.

Workload: N generated contacts of ~300 bytes in pages of 1,000, saved by a `track_deletes` full-refresh
sync; then a second run where 1% of them changed and 0.5% are gone. Each run executes in a fresh
process so its peak RSS is its own. Also measured on the same data:

- the bare reference loop: plain sqlite3 / psycopg2 upserts with a hash column, no validation, no Dagster;
- dlt (when installed, `pip install -e '.[bench]'`): `write_disposition="merge"`, `primary_key="id"`,
  parquet into DuckDB, and its default format into the same PostgreSQL.

    python benchmarks/full_refresh.py                      # 1,000,000 records on SQLite
    python benchmarks/full_refresh.py --records 100000
    SYNC_PIPELINE_BENCH_DATABASE_URL=postgresql+psycopg2://postgres@127.0.0.1:5432/postgres \
        python benchmarks/full_refresh.py                  # also on PostgreSQL
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from support import PAGE, BenchContact, database, dlt_available, pages  # a sibling module of this script

# -- the three contenders, each run in a child process ------------------------------------------


def run_ours(url: str, total: int, version: int) -> dict:
    from sync_pipeline.sdk import Integration
    from sync_pipeline.sdk.runner import PartitionState, run_sync
    from sync_pipeline.store import Connection, Store, utcnow

    bench = Integration("bench", base_url="http://127.0.0.1:9")

    @bench.sync(models=[BenchContact], sync_type="full", track_deletes=True)
    def contacts(ctx) -> None:
        for page in pages(total, version):
            ctx.batch_save(page, BenchContact)

    store = Store.from_url(url)
    state = PartitionState(last_sync_date=utcnow() if version > 1 else None)
    started = time.perf_counter()
    outcome = run_sync(contacts, Connection("bench", "conn"), "base", store.records, state)
    counts = outcome.counts["BenchContact"]
    return {"seconds": time.perf_counter() - started, **counts.as_dict()}


def run_reference(url: str, total: int, version: int) -> dict:
    """A minimal loop: serialise, hash, upsert where the hash changed. No validation, no deletes."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        import sqlite3

        conn = sqlite3.connect(parsed.database)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        placeholder = "?"
    else:
        import psycopg2

        conn = psycopg2.connect(
            host=parsed.host, port=parsed.port or 5432, user=parsed.username, password=parsed.password, dbname=parsed.database
        )
        placeholder = "%s"
    cursor = conn.cursor()
    cursor.execute("CREATE TABLE IF NOT EXISTS bench_reference (id TEXT PRIMARY KEY, payload TEXT, hash TEXT)")
    started = time.perf_counter()
    statement = (
        f"INSERT INTO bench_reference (id, payload, hash) VALUES ({placeholder}, {placeholder}, {placeholder}) "
        "ON CONFLICT (id) DO UPDATE SET payload = excluded.payload, hash = excluded.hash "
        "WHERE bench_reference.hash <> excluded.hash"
    )
    for page in pages(total, version):
        rows = []
        for item in page:
            payload = json.dumps(item, separators=(",", ":")).encode()
            rows.append((item["id"], payload.decode(), hashlib.blake2b(payload, digest_size=16).hexdigest()))
        if placeholder == "?":
            cursor.executemany(statement, rows)
        else:
            from psycopg2.extras import execute_batch

            execute_batch(cursor, statement, rows, page_size=PAGE)
        conn.commit()
    seconds = time.perf_counter() - started
    conn.close()
    return {"seconds": seconds}


def run_dlt(url: str, total: int, version: int, workdir: str) -> dict:
    import dlt
    from sqlalchemy.engine import make_url

    @dlt.resource(name="contacts", write_disposition="merge", primary_key="id")
    def contacts():
        yield from pages(total, version)

    os.environ["DLT_DATA_DIR"] = workdir
    os.environ["RUNTIME__LOG_LEVEL"] = "WARNING"
    if url.startswith("duckdb"):
        pipeline = dlt.pipeline(
            pipeline_name="bench_duckdb",
            destination=dlt.destinations.duckdb(str(Path(workdir) / "dlt_contacts.duckdb")),
            dataset_name="contacts_data",
            pipelines_dir=workdir,
        )
        started = time.perf_counter()
        pipeline.run(contacts(), loader_file_format="parquet")
    else:
        parsed = make_url(url)
        # dlt insists on a password; a trust-auth server ignores it
        password = parsed.password or "unused"
        credentials = f"postgresql://{parsed.username}:{password}@{parsed.host}:{parsed.port or 5432}/{parsed.database}"
        pipeline = dlt.pipeline(
            pipeline_name="bench_postgres",
            destination=dlt.destinations.postgres(credentials),
            dataset_name="contacts_data",
            pipelines_dir=workdir,
        )
        started = time.perf_counter()
        pipeline.run(contacts())
    return {"seconds": time.perf_counter() - started}


def child(args: argparse.Namespace) -> None:
    """One run of one contender; timed from its first record, after imports and connecting."""
    if args.child == "ours":
        result = run_ours(args.url, args.records, args.version)
    elif args.child == "reference":
        result = run_reference(args.url, args.records, args.version)
    else:
        result = run_dlt(args.url, args.records, args.version, args.workdir)
    print(json.dumps({"peak_mb": peak_rss_mb(), **result}))


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent at exec."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the driver -----------------------------------------------------------------------------------


def measure(contender: str, url: str, records: int, version: int, workdir: str) -> dict:
    # The previous run's writes reach the disk first: the kernel's writeback of a 1M-record run (~600 MB)
    # would otherwise land inside the next run's timing (SQLite's checkpoint fsync waits for it).
    os.sync()
    command = [
        sys.executable, __file__, "--child", contender, "--url", url, "--records", str(records),
        "--version", str(version), "--workdir", workdir,
    ]  # fmt: skip
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result = json.loads(output.strip().splitlines()[-1])
    result["rate"] = records / result["seconds"]
    return result


def report(label: str, contender: str, url: str, records: int, workdir: str) -> dict[int, dict]:
    results = {}
    for version in (1, 2):
        result = measure(contender, url, records, version, workdir)
        results[version] = result
        counts = ""
        if "added" in result:
            counts = f"  added {result['added']:,} updated {result['updated']:,} deleted {result['deleted']:,}"
        print(
            f"  {label:<34} run {version}: {result['seconds']:7.2f} s  {result['rate']:>9,.0f} rec/s  "
            f"peak RSS {result['peak_mb']:6.0f} MB{counts}",
            flush=True,
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--no-dlt", action="store_true", help="skip dlt even when it is installed")
    parser.add_argument("--child", choices=["ours", "reference", "dlt"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--version", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    with_dlt = not args.no_dlt and dlt_available()
    print(f"full refresh of {args.records:,} records (~300 B), pages of {PAGE}; run 2: 1% changed, 0.5% gone")
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as workdir, ExitStack() as databases:
        backends = [("SQLite", f"sqlite:///{workdir}/ours.db", f"sqlite:///{workdir}/reference.db")]
        server = os.environ.get("SYNC_PIPELINE_BENCH_DATABASE_URL")
        if server:
            backends.append(("PostgreSQL", *(databases.enter_context(database(server)) for _ in range(2))))
        for name, ours_url, reference_url in backends:
            print(f"\n{name}")
            ours = report("sync_pipeline (SDK -> cache)", "ours", ours_url, args.records, workdir)
            reference = report("bare reference loop", "reference", reference_url, args.records, workdir)
            line = f"  run 2 speed: {ours[2]['rate'] / reference[2]['rate']:.2f}x the bare loop"
            if with_dlt:
                dlt_url = "duckdb" if name == "SQLite" else databases.enter_context(database(server))
                dlt_label = "dlt merge, parquet -> DuckDB" if name == "SQLite" else "dlt merge, default -> PostgreSQL"
                dlt = report(dlt_label, "dlt", dlt_url, args.records, workdir)
                line += f", {ours[2]['rate'] / dlt[2]['rate']:.1f}x dlt"
            print(line)


if __name__ == "__main__":
    main()
