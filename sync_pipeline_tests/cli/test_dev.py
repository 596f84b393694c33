"""`sync-pipeline dev` as a user starts it: Dagster's GraphQL API shows every sync asset with its partitions, checks
and both sensors; a materialization launched through GraphQL runs; the UI renders an asset page in headless
Chromium; Ctrl-C stops everything within 5 s, and the console stays quiet."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from sync_pipeline.cli.processes import wait_until_answering
from sync_pipeline.integrations import load_registry
from sync_pipeline.orchestration.checks import INVALID_SHARE, MASS_DELETION
from sync_pipeline_tests.cli.processes import REPO, Command, free_port, port_closed
from sync_pipeline_tests.fakes.server import ServedApp
from sync_pipeline_tests.fakes.slack import SlackApi

ARTIFACTS = REPO / "artifacts"
ASSETS_QUERY = """
{ assetNodes { assetKey { path } isPartitioned partitionKeys
    assetChecksOrError { ... on AssetChecks { checks { name } } } } }
"""
SENSORS_QUERY = """
{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name }
    sensors { name sensorState { status } } } } } }
"""
LAUNCH = """
mutation Launch($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } ... on InvalidSubsetError { message }
  ... on RunConfigValidationInvalid { errors { message } } } }
"""
RUN_STATUS = "query Run($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"


class Dev:
    def __init__(self, command: Command, home: Path, ui: str, api: str, key: str) -> None:
        self.command, self.home, self.ui, self.api, self.key = command, home, ui, api, key

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        response = httpx.post(f"{self.ui}/graphql", json={"query": query, "variables": variables or {}}, timeout=60)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.api, headers={"Authorization": f"Bearer {self.key}"}, timeout=30)


@pytest.fixture(scope="module")
def slack():
    api = SlackApi()
    with ServedApp(api) as served:
        api.url = served.url
        for index in range(12):
            api.put(f"U{index:03d}", f"Member{index}")
        yield api


@pytest.fixture(scope="module")
def dev(tmp_path_factory, slack):
    home = tmp_path_factory.mktemp("dev_home")
    ui_port, api_port = free_port(), free_port()
    command = Command("dev", "--ui-port", str(ui_port), "--api-port", str(api_port), env={"DAGSTER_HOME": str(home)})
    ui, api = f"http://127.0.0.1:{ui_port}", f"http://127.0.0.1:{api_port}"
    try:
        assert wait_until_answering(f"{ui}/server_info", f"{api}/health", timeout=180), command.output()
        running = Dev(command, home, ui, api, (home / "secret_key").read_text().strip())
        with running.client() as client:
            response = client.post("/connections", json={
                "provider_config_key": "slack", "connection_id": "acme",
                "credentials": {"type": "OAUTH2", "access_token": slack.token},
                "connection_config": {"base_url": f"{slack.url}/api"},
            })  # fmt: skip
            assert response.status_code == 200, response.text
        yield running
    finally:
        command.kill()


def _slack_status(dev: Dev) -> dict:
    with dev.client() as client:
        params = {"provider_config_key": "slack", "connection_id": "acme", "syncs": "users"}
        return client.get("/sync/status", params=params).json()["syncs"][0]


def _wait_for_success(dev: Dev, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = _slack_status(dev)
        if status["status"] in ("SUCCESS", "ERROR"):
            return status
        time.sleep(1)
    raise AssertionError(f"the slack sync did not finish within {timeout} s: {status}")


def test_graphql_shows_every_sync_asset_with_partitions_checks_and_both_sensors(dev):
    registry = load_registry(extra_modules="")
    nodes = {"/".join(node["assetKey"]["path"]): node for node in dev.graphql(ASSETS_QUERY)["assetNodes"]}

    for sync in registry.syncs():
        for model in sync.model_names:
            node = nodes[f"{sync.integration.name}/{model}"]
            assert node["isPartitioned"]
            assert {check["name"] for check in node["assetChecksOrError"]["checks"]} >= {MASS_DELETION, INVALID_SHARE}
    assert "acme::base" in nodes["slack/SlackUser"]["partitionKeys"]
    repositories = dev.graphql(SENSORS_QUERY)["repositoriesOrError"]["nodes"]
    sensors = {sensor["name"]: sensor["sensorState"]["status"] for repo in repositories for sensor in repo["sensors"]}
    assert sensors["sync_pipeline_scheduler"] == sensors["sync_pipeline_webhooks"] == "RUNNING"
    assert dev.graphql("{ shouldShowNux }")["shouldShowNux"] is False  # the "join the community" dialog is off


def test_a_materialization_launched_through_graphql_runs(dev):
    assert _wait_for_success(dev)["status"] == "SUCCESS"  # the connection's first, automatic run
    [repository] = [repo for repo in dev.graphql(SENSORS_QUERY)["repositoriesOrError"]["nodes"]
                    if "sync_pipeline_scheduler" in {sensor["name"] for sensor in repo["sensors"]}]  # fmt: skip
    params = {
        "selector": {"repositoryLocationName": repository["location"]["name"], "repositoryName": repository["name"],
                     "jobName": "slack__users"},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": "acme::base"}]},
    }  # fmt: skip

    launched = dev.graphql(LAUNCH, {"params": params})["launchRun"]

    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    deadline = time.monotonic() + 240
    while (status := dev.graphql(RUN_STATUS, {"id": run_id})["runOrError"]["status"]) not in ("SUCCESS", "FAILURE"):
        assert time.monotonic() < deadline, f"run {run_id} still {status}"
        time.sleep(1)
    assert status == "SUCCESS"
    assert _slack_status(dev)["recordCount"] == {"SlackUser": 12}


def test_trigger_wait_shows_progress_and_the_result(dev, slack):
    slack.put("U100", "Newcomer")

    result = subprocess.run(
        [*dev.command.process.args[:3], "--url", dev.api, "--key", dev.key, "trigger", "slack", "acme", "users", "--wait",
         "--timeout", "300"],
        capture_output=True, text=True, timeout=400, cwd=REPO,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "SlackUser 13" in result.stdout
    assert "0/1 done" in result.stderr  # the live line, while it waited


def test_an_asset_page_renders_with_its_checks_in_headless_chromium(dev):
    assert shutil.which("chromium"), "Debian's chromium is needed: apt-get install -y chromium (.ci/run installs it)"
    url = f"{dev.ui}/assets/slack/SlackUser?view=checks"
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "dagster-ui-slack-SlackUser-checks.png"

    # The page fetches its data after it loads: on a loaded machine one dump can come before the answer.
    for _attempt in range(3):
        dom = _chromium(url, "--dump-dom")
        if INVALID_SHARE in dom:
            break
    _chromium(url, f"--screenshot={screenshot}", "--window-size=1440,1000")

    assert "SlackUser" in dom
    assert MASS_DELETION in dom and INVALID_SHARE in dom
    assert screenshot.stat().st_size > 10_000


def _chromium(url: str, *action: str) -> str:
    """Chromium headless, alone: a new empty profile, no network of its own (updates, sync, QUIC, first run)."""
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--virtual-time-budget=20000", *action, url],
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_ctrl_c_stops_dev_within_five_seconds_and_the_console_stayed_quiet(dev):
    ui_port, api_port = int(dev.ui.rsplit(":", 1)[1]), int(dev.api.rsplit(":", 1)[1])

    took = dev.command.interrupt()

    assert took < 5, f"Ctrl-C took {took:.1f} s"
    assert port_closed(ui_port) and port_closed(api_port)
    output = dev.command.output()
    assert "SupersessionWarning" not in output and "dg dev" not in output
    assert "will not be used to configure Dagster" not in output  # the dagster.yaml warning of `dagster dev`
    assert "skipped" not in output and "Checking for new runs" not in output  # no per-tick sensor chatter
