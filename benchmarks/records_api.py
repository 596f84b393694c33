"""The records API under an app paging through every change: throughput, and the latency of one page.

A cache of N changes (default 1,000,000 Slack users of ~300 bytes) is filled directly, `sync-pipeline
serve` starts in its own process on 127.0.0.1, and an httpx client pages through all of it with
`limit=1000` following `next_cursor`; then it asks for single pages after cursors taken from the
middle of the stream and reports their p50 and p99.

    python benchmarks/records_api.py                       # on SQLite
    python benchmarks/records_api.py --records 100000
    SYNC_PIPELINE_BENCH_DATABASE_URL=postgresql+psycopg2://postgres@127.0.0.1:5432/postgres \
        python benchmarks/records_api.py                   # also on PostgreSQL
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from support import backends, database  # a sibling module of this script

from sync_pipeline.store import Connection, PreparedRecord, Store, StreamKey, utcnow

SECRET = "bench-secret"


def fill(store: Store, total: int) -> None:
    key = StreamKey("slack", "bench", "SlackUser", "base")
    for start in range(0, total, 1000):
        batch = []
        for n in range(start, min(total, start + 1000)):
            payload = json.dumps(
                {
                    "id": f"U{n:010d}",
                    "team_id": "T0001",
                    "name": f"user{n}",
                    "real_name": f"Real Name Number {n}",
                    "display_name": f"display{n}",
                    "email": f"user{n}@example-company.com",
                    "title": "Senior Vice President of Something",
                    "timezone": "America/Los_Angeles",
                    "is_admin": False,
                    "deactivated": False,
                },
                separators=(",", ":"),
            )
            batch.append(PreparedRecord(f"U{n:010d}", payload, hashlib.blake2b(payload.encode(), digest_size=16).hexdigest()))
        store.records.save(key, batch, utcnow())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(env: dict[str, str], port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "sync_pipeline.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1)
            return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("the API server did not start within 60 s")


def page_through(client: httpx.Client, limit: int) -> tuple[int, float, list[str]]:
    """Every page, parsed with the standard json module as an app would: (records, seconds, cursors)."""
    cursor, count, marks = None, 0, []
    started = time.perf_counter()
    while True:
        params = {"model": "SlackUser", "limit": limit, **({"cursor": cursor} if cursor else {})}
        body = client.get("/records", params=params).json()
        count += len(body["records"])
        if body["records"]:
            marks.append(body["records"][-1]["_nango_metadata"]["cursor"])
        cursor = body["next_cursor"]
        if cursor is None:
            return count, time.perf_counter() - started, marks


def settle(store: Store) -> None:
    """Do now what the database would do on its own after a bulk load, so it is not inside the timing:
    on PostgreSQL, autovacuum's VACUUM ANALYZE of a million new rows (it took a core for the first
    seconds of the read and cut the figure by a quarter); on SQLite, the WAL checkpoint."""
    with store.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE sp_records")
        else:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    store.engine.dispose()
    os.sync()


def stream_through(client: httpx.Client, limit: int) -> float:
    """Every page as bytes, reading only `next_cursor` at its end: the server's and transport's share."""
    cursor = None
    started = time.perf_counter()
    while True:
        params = {"model": "SlackUser", "limit": limit, **({"cursor": cursor} if cursor else {})}
        body = client.get("/records", params=params).content
        cursor = json.loads(body[body.rindex(b'"next_cursor":') + 14 : -1])
        if cursor is None:
            return time.perf_counter() - started


def single_pages(client: httpx.Client, cursors: list[str], limit: int) -> list[float]:
    timings = []
    for cursor in cursors:
        started = time.perf_counter()
        response = client.get("/records", params={"model": "SlackUser", "limit": limit, "cursor": cursor})
        response.raise_for_status()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    for name, server in backends():
        with database(server) as url:
            measure(name, url, args)


def measure(backend: str, url: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        home = Path(workdir) / "dagster_home"
        home.mkdir()
        env = {**os.environ, "DAGSTER_HOME": str(home), "SYNC_PIPELINE_DATABASE_URL": url, "SYNC_PIPELINE_SECRET_KEY": SECRET}
        store = Store.from_url(url)
        store.connections.upsert(Connection("slack", "bench", credentials={"type": "NONE"}))
        print(f"{backend}: filling the cache with {args.records:,} records ...", flush=True)
        fill(store, args.records)
        settle(store)
        port = free_port()
        server = start_server(env, port)
        headers = {"Authorization": f"Bearer {SECRET}", "Connection-Id": "bench", "Provider-Config-Key": "slack"}
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as client:
                streamed = stream_through(client, args.limit)
                count, seconds, marks = page_through(client, args.limit)
                middle = marks[len(marks) // 4 : 3 * len(marks) // 4] or marks
                timings = sorted(single_pages(client, random.choices(middle, k=args.samples), args.limit))
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"records API on {backend}, limit={args.limit}")
    print(f"  streamed {count:,} records to httpx in {streamed:.2f} s: {count / streamed:,.0f} records/s")
    print(f"  paged and parsed them (stdlib json) in {seconds:.2f} s: {count / seconds:,.0f} records/s")
    p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
    print(f"  one page after a cursor in the middle ({args.samples} samples): p50 {statistics.median(timings):.1f} ms, p99 {p99:.1f} ms")


if __name__ == "__main__":
    main()
