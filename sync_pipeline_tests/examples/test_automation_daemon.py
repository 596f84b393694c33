"""Automation after each sync, through a real `dagster-daemon` running the repository's workspace.yaml.

The scheduler sensor launches a Slack sync run; the example project's automation sensor then launches its
summary of that partition on its own: a plain `AutomationCondition.eager()`. A sync that changes nothing does
not wake it (the run observes its asset instead of materializing it); a change does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterInstance
from dagster._core.scheduler.instigation import TickStatus

from sync_pipeline.orchestration.automation import AUTOMATION_SENSOR_NAME
from sync_pipeline.store import utcnow

REPO = Path(__file__).resolve().parents[2]
SLACK_USERS = AssetKey(["slack", "SlackUser"])
SUMMARY = AssetKey(["slack_reports", "slack_user_summary"])
PARTITION = "team-1::base"
T = TypeVar("T")


@pytest.fixture
def daemon(instance: DagsterInstance, database_url: str, tmp_path) -> Iterator[subprocess.Popen]:
    """`dagster-daemon run` on the test's Dagster home and database, loading the repository's workspace.yaml."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SYNC_PIPELINE_WEBHOOK")},
        "DAGSTER_HOME": instance.root_directory,
        "SYNC_PIPELINE_DATABASE_URL": database_url,
        "SYNC_PIPELINE_INTEGRATIONS": "",
    }
    log = open(tmp_path / "daemon.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "dagster._daemon", "run", "-w", str(REPO / "workspace.yaml")],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the code servers and runs it starts stop with it
    )
    try:
        yield process
    finally:
        for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            if process.poll() is not None:
                break
            os.killpg(process.pid, sig)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                continue
        log.close()


def wait_for(what: str, probe: Callable[[], T | None], daemon: subprocess.Popen, timeout: float = 300) -> T:
    """Poll `probe` until it returns something truthy; a loaded machine gets minutes, not seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert daemon.poll() is None, "dagster-daemon exited"
        value = probe()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def materializations(instance: DagsterInstance, key: AssetKey) -> list:
    return list(
        instance.fetch_materializations(AssetRecordsFilter(asset_key=key, asset_partitions=[PARTITION]), limit=100).records
    )


def observations(instance: DagsterInstance, key: AssetKey) -> list:
    return list(
        instance.fetch_observations(AssetRecordsFilter(asset_key=key, asset_partitions=[PARTITION]), limit=100).records
    )


def summary_runs(instance: DagsterInstance) -> int:
    """Runs launched for the summary, whatever their state: a requested run counts before it materializes."""
    return sum(1 for run in instance.get_runs() if run.asset_selection and SUMMARY in run.asset_selection)


def automation_ticks_after(instance: DagsterInstance, timestamp: float) -> int:
    """How many ticks of the example's automation sensor finished evaluating after `timestamp`."""
    states = [s for s in instance.all_instigator_state() if s.instigator_name == AUTOMATION_SENSOR_NAME]
    finished = (TickStatus.SUCCESS, TickStatus.SKIPPED)
    return sum(
        1
        for state in states
        for tick in instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=20)
        if tick.status in finished and tick.timestamp > timestamp
    )


def test_the_example_summary_follows_each_changing_sync_and_sleeps_through_unchanged_ones(
    daemon, instance, store, sync, slack_api
):
    slack_api.put("U01", "Ann", is_admin=True)
    slack_api.put("U02", "Bob")
    slack_api.put("U03", "Cid")
    sync.connect(
        "slack", "team-1", base_url=slack_api.url + "/api", credentials={"type": "OAUTH2", "access_token": slack_api.token}
    )
    # Automation compares each tick with the one before: let it take its first look before the first sync.
    wait_for("the automation sensor's first tick", lambda: automation_ticks_after(instance, 0), daemon)

    sync.add_partition("slack", "users", "team-1")  # auto_start: the scheduler sensor runs it at once
    [first_sync] = wait_for("the first Slack sync", lambda: materializations(instance, SLACK_USERS), daemon)
    [summary] = wait_for("the summary after the first sync", lambda: materializations(instance, SUMMARY), daemon)
    metadata = {name: entry.value for name, entry in summary.asset_materialization.metadata.items()}
    assert metadata["users"] == 3 and metadata["admins"] == 1
    assert metadata["sync_pipeline/cursor/slack/SlackUser"][PARTITION], "the cursor it read up to"
    assert summary.timestamp > first_sync.timestamp

    # A tick that sees the summary's own update and a new sync together counts the sync as handled: let one pass.
    wait_for("an automation tick after the summary", lambda: automation_ticks_after(instance, summary.timestamp), daemon)
    store.partitions.trigger("slack", "users", PARTITION, "incremental", utcnow())  # nothing changed at Slack
    [unchanged] = wait_for("the second Slack sync", lambda: observations(instance, SLACK_USERS), daemon)
    assert unchanged.asset_observation.metadata["added"].value == 0
    wait_for("two automation ticks after it", lambda: automation_ticks_after(instance, unchanged.timestamp) >= 2, daemon)
    assert summary_runs(instance) == 1, "a sync that changed nothing woke the summary"
    assert len(materializations(instance, SLACK_USERS)) == 1

    slack_api.put("U04", "Dee")
    store.partitions.trigger("slack", "users", PARTITION, "incremental", utcnow())
    wait_for("the third Slack sync", lambda: len(materializations(instance, SLACK_USERS)) >= 2, daemon)
    latest = wait_for(
        "the summary after the change",
        lambda: len(materializations(instance, SUMMARY)) >= 2 and materializations(instance, SUMMARY)[0],
        daemon,
    )
    assert latest.asset_materialization.metadata["users"].value == 4
