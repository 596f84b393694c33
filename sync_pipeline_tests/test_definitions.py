"""The code location as Dagster loads it: it validates, and its generated definitions match the snapshot.

The snapshot makes every change to asset keys, groups, partitions, asset checks, jobs and sensors visible in review.
After an intended change, regenerate it: SYNC_PIPELINE_UPDATE_SNAPSHOTS=1 python -m pytest sync_pipeline_tests/test_definitions.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sync_pipeline.definitions import defs

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"


def describe_definitions() -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "partitions": getattr(node.partitions_def, "name", None),
            "columns": [column.name for column in schema.columns] if (schema := node.metadata.get("dagster/column_schema")) else None,
        }
    return {
        "assets": assets,
        "asset_checks": sorted(f"{key.asset_key.to_user_string()}:{key.name}" for key in graph.asset_check_keys),
        "jobs": sorted(job.name for job in defs.resolve_all_job_defs() if not job.name.startswith("__")),
        "sensors": sorted(
            [{"name": sensor.name, "default_status": sensor.default_status.value} for sensor in defs.sensors or []],
            key=lambda sensor: sensor["name"],
        ),
    }


def test_generated_definitions_match_the_snapshot():
    current = describe_definitions()
    if os.environ.get("SYNC_PIPELINE_UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(json.dumps(current, indent=2) + "\n")
    assert current == json.loads(SNAPSHOT.read_text())


def test_dagster_validates_the_workspace(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr
