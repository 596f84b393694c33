"""The Dagster code location (`workspace.yaml`): every integration's syncs as partitioned assets."""

from sync_pipeline.integrations import load_registry
from sync_pipeline.orchestration import build_definitions

defs = build_definitions(load_registry())
