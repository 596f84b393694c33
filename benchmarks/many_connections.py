"""Many small syncs at once: N connections of 20 Slack users each, created together, on PostgreSQL, with Dagster's
default launcher (a Python process per run) and with Celery workers (`--workers 2`), in the same script.

Prints syncs a minute (first creation to last webhook), machine CPU-seconds a sync (all of /proc/stat's non-idle
time over that span: the daemon, the API, the workers, PostgreSQL and the broker, and anything else running),
"own" CPU-seconds a sync (the deployment's processes and their children only, without PostgreSQL and the broker),
and the p50/p99 time from a connection's creation to its change webhook arriving at a receiver on 127.0.0.1.
Targets on a 2-core machine: Celery at least 300 syncs/min, at most 0.2 CPU-s a sync, 7x the default launcher,
p50 under 5 s.

    SYNC_PIPELINE_BENCH_DATABASE_URL=postgresql+psycopg2://postgres@127.0.0.1:5432/postgres \\
        python benchmarks/many_connections.py [--connections 300] [--default-connections 300] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from fakes import Receiver, SlackUsers, served  # noqa: E402  (sibling modules of this script)
from profiles import Recorder, report  # noqa: E402
from support import database  # noqa: E402

BROKER = os.environ.get("SYNC_PIPELINE_BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
KEY = "bench-key"
USERS = 20


def cpu_seconds() -> float:
    """Non-idle CPU time of the whole machine (all cores), from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def process_tree_cpu(roots: list[int]) -> float:
    """CPU-seconds of the deployment's own processes: `roots` and every live descendant, each with its reaped
    children (the default launcher's run processes, a worker's finished pool processes)."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = (int(fields[1]), sum(int(v) for v in fields[11:15]))  # ppid, u+s+cu+cs
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, list(roots)
    while todo:
        pid = todo.pop()
        total += stats.get(pid, (0, 0))[1]
        todo.extend(children.get(pid, []))
    return total / os.sysconf("SC_CLK_TCK")


class PeakConnections:
    """The most client connections PostgreSQL had open at once while this runs (its max_connections is the limit
    a deployment's processes and their pools share), sampled twice a second."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine

        self._engine, self._stop, self.peak = create_engine(url), threading.Event(), 0
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        from sqlalchemy import text

        query = text("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
        with self._engine.connect() as conn:
            while not self._stop.wait(0.5):
                self.peak = max(self.peak, conn.execute(query).scalar())

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        self._engine.dispose()
        return self.peak


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(server: str, connections: int, workers: int, concurrency: int, profile: Path | None = None) -> dict:
    receiver, slack = Receiver(), SlackUsers(USERS)
    with database(server) as url, served(receiver) as hooks, served(slack) as provider, tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "DAGSTER_HOME": home, "SYNC_PIPELINE_DATABASE_URL": url, "SYNC_PIPELINE_SECRET_KEY": KEY,
               "SYNC_PIPELINE_WEBHOOK_URL": hooks + "/hooks", "SYNC_PIPELINE_ALLOW_PRIVATE_WEBHOOK_URLS": "true"}  # fmt: skip
        env.pop("SYNC_PIPELINE_BROKER_URL", None)
        if workers:
            env |= {"SYNC_PIPELINE_BROKER_URL": BROKER, "SYNC_PIPELINE_QUEUE": f"sp_bench_{uuid.uuid4().hex[:8]}"}
        cli = [sys.executable, "-m", "sync_pipeline.cli"]
        subprocess.run([*cli, "migrate"], env=env, check=True, capture_output=True, cwd=home)
        api = "http://127.0.0.1:3093"
        commands = [[*cli, "daemon", "-m", "sync_pipeline.definitions"], [*cli, "serve", "--port", "3093"]]
        commands += [[*cli, "worker", "--concurrency", str(concurrency), "--name", f"w{i}"] for i in range(workers)]
        logs = tempfile.TemporaryFile()
        children = [subprocess.Popen(c, env=env, cwd=home, stdout=logs, stderr=subprocess.STDOUT, start_new_session=True)
                    for c in commands]  # fmt: skip
        try:
            _wait_until_ready(api, env, workers)
            time.sleep(5)  # the daemon's first sensor ticks (code server start-up) out of the timing
            client = httpx.Client(base_url=api, headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
            created: dict[str, float] = {}
            roots = [child.pid for child in children]
            roles = {"daemon": roots[:1], "api": roots[1:2], "workers": roots[2:]}
            role_start = {role: process_tree_cpu(pids) for role, pids in roles.items()}
            spies = profile and Recorder(profile, {"daemon": roots[0], **{f"worker {i}": pid for i, pid in enumerate(roots[2:])}})
            peak = PeakConnections(url)
            cpu_start, own_start, started = cpu_seconds(), process_tree_cpu(roots), time.time()

            def create(index: int) -> None:
                connection_id = f"c{index:05d}"
                created[connection_id] = time.time()
                response = client.post("/connections", json={
                    "provider_config_key": "slack", "connection_id": connection_id,
                    "credentials": {"type": "OAUTH2", "access_token": "xoxb-bench"},
                    "connection_config": {"base_url": f"{provider}/api"},
                })  # fmt: skip
                response.raise_for_status()

            with ThreadPoolExecutor(8) as pool:
                list(pool.map(create, range(connections)))
            arrival = _wait_for_webhooks(receiver, set(created), timeout=120 + connections * 6)
            finished, cpu_end, own_end = time.time(), cpu_seconds(), process_tree_cpu(roots)
            profiles = spies.stop() if spies else {}
            connections_peak = peak.stop()
            role_cpu = {role: (process_tree_cpu(pids) - role_start[role]) / connections for role, pids in roles.items()}
            sizes = _sizes_per_sync(url, connections)
            stages = _stages(url, created, arrival)
        finally:
            for child in children:
                try:
                    os.killpg(child.pid, 15)
                except ProcessLookupError:
                    pass
            for child in children:
                child.wait(timeout=30)
        latencies = [arrival[c] - created[c] for c in created]
        return {
            "syncs_per_minute": connections / (finished - started) * 60,
            "cpu_per_sync": (cpu_end - cpu_start) / connections,
            "own_cpu_per_sync": (own_end - own_start) / connections,
            "p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99),
            "seconds": finished - started, "webhooks": len(receiver.bodies), "roles": role_cpu, "sizes": sizes,
            "profiles": profiles, "peak_connections": connections_peak, "stages": stages,
        }  # fmt: skip


def _sizes_per_sync(url: str, connections: int) -> dict[str, float]:
    """KB a sync adds to the database: all of it, Dagster's event log, and the records cache."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        size = lambda sql: conn.execute(text(sql)).scalar() / 1024 / connections  # noqa: E731
        result = {"database": size("SELECT pg_database_size(current_database())"),
                  "event log": size("SELECT pg_total_relation_size('event_logs')"),
                  "records": size("SELECT pg_total_relation_size('sp_records')")}  # fmt: skip
    engine.dispose()
    return result


def _stages(url: str, created: dict[str, float], arrival: dict[str, float]) -> dict[str, float]:
    """Median seconds of each stage from a connection's creation to its webhook, from Dagster's runs table: where
    a burst's latency goes (the scheduling sensor, the run queue and workers, the run, the webhook sensor)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    query = text("SELECT partition, EXTRACT(EPOCH FROM create_timestamp AT TIME ZONE 'UTC'), start_time, end_time "
                 "FROM runs WHERE status = 'SUCCESS' ORDER BY create_timestamp")  # fmt: skip
    with engine.connect() as conn:
        runs = {}
        for partition, run_created, started, ended in conn.execute(query):
            runs.setdefault(partition.split("::")[0], (float(run_created), started, ended))
    engine.dispose()
    spans = {"to its run's creation (scheduling sensor)": [], "run queued until started (queue, broker, worker)": [],
             "run started until ended": [], "run ended until webhook (webhook sensor)": []}  # fmt: skip
    for connection_id, (run_created, started, ended) in runs.items():
        points = (created[connection_id], run_created, started, ended, arrival[connection_id])
        for span, (start, end) in zip(spans.values(), zip(points, points[1:])):
            span.append(end - start)
    return {name: percentile(values, 0.5) for name, values in spans.items() if values}


def _wait_until_ready(api: str, env: dict, workers: int) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200 and _workers_answering(env, workers):
                return
        except httpx.TransportError:
            pass
        time.sleep(1)
    raise SystemExit("the deployment did not come up within 180 s")


def _workers_answering(env: dict, workers: int) -> bool:
    if not workers:
        return True
    from celery import Celery

    replies = Celery(broker=env["SYNC_PIPELINE_BROKER_URL"]).control.ping(timeout=1) or []
    return sum(any(name.startswith("w") for name in reply) for reply in replies) >= workers


def _wait_for_webhooks(receiver: Receiver, ids: set[str], timeout: float) -> dict[str, float]:
    """Each connection's first webhook arrival time (time.time())."""
    deadline = time.monotonic() + timeout
    arrival: dict[str, float] = {}
    seen = 0
    while len(arrival) < len(ids):
        for body, at in zip(receiver.bodies[seen:], receiver.arrived[seen:]):
            arrival.setdefault(json.loads(body)["connectionId"], at)
            seen += 1
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(arrival)} of {len(ids)} webhooks within {timeout:.0f} s")
        time.sleep(0.2)
    return arrival


def _under(directory: Path | None, name: str) -> Path | None:
    return directory / name if directory else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=300, help="connections on Celery workers")
    parser.add_argument("--default-connections", type=int, default=None, help="on the default launcher (default: --connections)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2, help="each worker's pool processes")
    parser.add_argument("--only", choices=["default", "celery"], default=None)
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="py-spy the daemon and the workers into DIR (needs root) and print whose code the CPU went to")  # fmt: skip
    args = parser.parse_args()
    server = os.environ.get("SYNC_PIPELINE_BENCH_DATABASE_URL")
    if not server:
        raise SystemExit("set SYNC_PIPELINE_BENCH_DATABASE_URL to a PostgreSQL server: scale-out needs PostgreSQL")
    results = {}
    if args.only in (None, "default"):
        results["default launcher"] = run(server, args.default_connections or args.connections, 0, 0, _under(args.profile, "default"))
    if args.only in (None, "celery"):
        results[f"celery, {args.workers} workers x {args.concurrency}"] = run(server, args.connections, args.workers, args.concurrency, _under(args.profile, "celery"))
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} (other work on the machine counts in machine CPU-s)")
    print(f"{'':28} {'syncs/min':>10} {'CPU-s/sync':>11} {'own CPU-s':>10} {'p50 s':>7} {'p99 s':>7} {'wall s':>7} {'webhooks':>9}")
    for name, r in results.items():
        print(f"{name:28} {r['syncs_per_minute']:10.1f} {r['cpu_per_sync']:11.3f} {r['own_cpu_per_sync']:10.3f} {r['p50']:7.1f} "
              f"{r['p99']:7.1f} {r['seconds']:7.1f} {r['webhooks']:9d}")  # fmt: skip
        print(f"{'':28} own CPU-s a sync by process: " + ", ".join(f"{k} {v:.3f}" for k, v in r["roles"].items()))
        print(f"{'':28} KB a sync in PostgreSQL: " + ", ".join(f"{k} {v:.1f}" for k, v in r["sizes"].items()))
        print(f"{'':28} PostgreSQL client connections at the peak: {r['peak_connections']}")
        print(f"{'':28} median seconds from creation: " + ", ".join(f"{k} {v:.1f}" for k, v in r["stages"].items()))
        for line in report(r["profiles"]):
            print(f"{'':28} {line}")
    if len(results) == 2:
        default, celery = results.values()
        print(f"celery / default syncs a minute: {celery['syncs_per_minute'] / default['syncs_per_minute']:.1f}x")


if __name__ == "__main__":
    main()
