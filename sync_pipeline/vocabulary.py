"""The words sync_pipeline uses everywhere, defined once: variants, sync types, run kinds and modes, run tags."""

from __future__ import annotations

from typing import Literal

from dagster import DagsterRunStatus

BASE_VARIANT = "base"
"""The variant every connection has; the others are created by name (`POST /sync/{name}/variant/{variant}`)."""

# What a sync declares: does every run see every record (`full`) or only what changed (`incremental`)?
SyncType = Literal["full", "incremental"]
SYNC_TYPES: tuple[SyncType, ...] = ("full", "incremental")

# What kind of run made a change, as recorded in its metadata. The app hears FULL as INCREMENTAL (Nango's words).
INITIAL, INCREMENTAL, FULL, WEBHOOK = "INITIAL", "INCREMENTAL", "FULL", "WEBHOOK"

# How a run was asked for (the `sync_mode` of a trigger); provider webhooks write under their own mode.
MODE_INCREMENTAL, MODE_FULL_REFRESH, MODE_CLEAR_CACHE = "incremental", "full_refresh", "full_refresh_and_clear_cache"
RUN_MODES = (MODE_INCREMENTAL, MODE_FULL_REFRESH, MODE_CLEAR_CACHE)
RunModeName = Literal["incremental", "full_refresh", "full_refresh_and_clear_cache"]
MODE_WEBHOOK = "webhook"
RESET_MODES = frozenset({MODE_FULL_REFRESH, MODE_CLEAR_CACHE})  # runs that forget the partition's state

# Tags of a sync run: its mode, and the keys `dagster.yaml` limits concurrency by.
MODE_TAG = "sync_pipeline/mode"
PARTITION_TAG = "sync_pipeline/partition"
CONNECTION_TAG = "sync_pipeline/connection"
ALLOW_MASS_DELETE_TAG = "sync_pipeline/allow_mass_delete"  # "true": the trigger let the run through the guard
# Set by the scale-out run launcher on a run whose Celery worker died under it: not the sync's fault.
WORKER_LOST_TAG = "sync_pipeline/worker_lost"
DAGSTER_PARTITION_TAG = "dagster/partition"  # set by Dagster on every run of a partition
CANCELED_BY_TAG = "sync_pipeline/canceled_by"  # added to a run stopped by a reset trigger: why, for its error

# The scheduler and webhook sensors tick on every pass of the daemon's sensor loop (every 5 s; the demo's
# is faster, see cli/daemon.py). A minimum interval equal to the loop's would miss every other pass by a few
# milliseconds (a tick 5 s after the last is not yet due), so a trigger waited up to 10 s for its run.
EVERY_SENSOR_LOOP = 1

# A run in one of these holds its partition: no second run is requested, and `/sync/status` says RUNNING.
IN_FLIGHT = (
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.MANAGED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
)
