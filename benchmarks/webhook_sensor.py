"""One tick of the webhook sensor after 1,000 materializations, delivering to a receiver on 127.0.0.1.

Target: under 5 s a tick, no webhook lost. The materializations are reported straight to Dagster (as a
provider webhook's are) for 1,000 partitions of the benchmark's integration `bench`, each with a change.

    python benchmarks/webhook_sensor.py                        # SQLite
    SYNC_PIPELINE_BENCH_DATABASE_URL=postgresql+psycopg2://postgres@127.0.0.1:5432/postgres \
        python benchmarks/webhook_sensor.py                    # also PostgreSQL
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dagster import AssetMaterialization, build_sensor_context  # noqa: E402

from fakes import Receiver, registry, served  # noqa: E402  (sibling modules of this script)
from support import backends, database, make_instance  # noqa: E402
from sync_pipeline.keys import make_partition_key  # noqa: E402
from sync_pipeline.orchestration import build_definitions  # noqa: E402
from sync_pipeline.orchestration.notifications import SENSOR_NAME  # noqa: E402
from sync_pipeline.orchestration.run_metadata import RunMetadata  # noqa: E402
from sync_pipeline.store import Connection, Store, StreamKey, encode_cursor, utcnow  # noqa: E402
from sync_pipeline.vocabulary import MODE_WEBHOOK, WEBHOOK  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--materializations", type=int, default=1_000)
    args = parser.parse_args()
    for name, server in backends():
        with database(server) as url:
            run(name, url, args.materializations)


def run(backend: str, url: str, total: int) -> None:
    receiver = Receiver()
    with tempfile.TemporaryDirectory() as home, served(receiver) as url_root:
        os.environ["SYNC_PIPELINE_WEBHOOK_URL"] = url_root + "/hooks"
        os.environ["SYNC_PIPELINE_WEBHOOK_SIGNING_KEY"] = "bench-signing-key"
        instance = make_instance(Path(home), url, postgres=backend == "PostgreSQL")
        store = Store.from_url(url)
        defs = build_definitions(registry, database_url=url)
        sensor = defs.resolve_sensor_def(SENSOR_NAME)
        context = build_sensor_context(instance=instance, definitions=defs, resources=defs.resources)
        cursor = sensor(context).cursor  # the tick before: nothing yet

        started = time.perf_counter()
        report(instance, store, total)
        setup = time.perf_counter() - started

        started = time.perf_counter()
        context = build_sensor_context(instance=instance, definitions=defs, resources=defs.resources, cursor=cursor)
        sensor(context)
        elapsed = time.perf_counter() - started

        arrived = {json.loads(body)["connectionId"] for body in receiver.bodies}
        delivered = len(store.deliveries.list(status="delivered", limit=total * 2))
        print(
            f"{backend}: {total:,} materializations (reported in {setup:.1f} s); one tick: {elapsed:.2f} s; "
            f"received {len(receiver.bodies):,} webhooks for {len(arrived):,} partitions, "
            f"{delivered:,} logged delivered; lost: {total - len(arrived):,}; target < 5 s, none lost"
        )
        store.engine.dispose()
        instance.dispose()


def report(instance, store: Store, total: int) -> None:
    """One connection and partition per materialization, each reporting one changed record."""
    now = utcnow()
    for n in range(total):
        connection_id = f"conn-{n:05d}"
        store.connections.upsert(Connection(integration="bench", connection_id=connection_id, credentials={"type": "NONE"}))
        store.partitions.ensure("bench", "contacts", connection_id, "base", now, due_now=False)
        instance.report_runless_asset_event(
            AssetMaterialization(
                asset_key=["bench", "BenchContact"],
                partition=make_partition_key(connection_id),
                metadata=RunMetadata(
                    connection_id=connection_id,
                    variant="base",
                    kind=WEBHOOK,
                    mode=MODE_WEBHOOK,
                    started_at=utcnow(),
                    added=0,
                    updated=1,
                    deleted=0,
                    total_records=1,
                    low_watermark=encode_cursor(0, StreamKey("bench", connection_id, "BenchContact")),
                ).to_dagster(),
            )
        )


if __name__ == "__main__":
    main()
