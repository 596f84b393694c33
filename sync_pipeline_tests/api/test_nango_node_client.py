"""Nango's own Node client (`@nangohq/node`, from the npm registry) against our served API: listConnections,
getConnection with forceRefresh, getScriptsConfig."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sync_pipeline_tests.api.conftest import SECRET
from sync_pipeline_tests.fakes.oauth import CLIENT_ID, CLIENT_SECRET
from sync_pipeline_tests.fakes.server import ServedApp
from sync_pipeline_tests.fakes.slack import SlackApi

CLIENT_VERSION = "0.71.10"
UNREACHABLE = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT", "ECONNRESET", "network")

SCRIPT = """
import { Nango } from '@nangohq/node';

const [host, secretKey] = process.argv.slice(2);
const nango = new Nango({ host, secretKey });
try {
    const out = {
        all: await nango.listConnections(),
        page: await nango.listConnections({ limit: 1, page: 1 }),
        search: await nango.listConnections(undefined, 'TEAM-2'),
        tagged: await nango.listConnections({ tags: { plan: 'pro' } }),
        connection: await nango.getConnection('slack', 'team-1', true, true),
        scripts: await nango.getScriptsConfig(),
    };
    console.log(JSON.stringify(out));
} catch (error) {
    console.error(JSON.stringify({ status: error.response?.status, data: error.response?.data, message: error.message }));
    process.exit(1);
}
"""


@pytest.fixture(scope="session")
def nango_node(tmp_path_factory) -> Path:
    """A directory with @nangohq/node installed from the npm registry, once per test session."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are not installed: Nango's Node client cannot be run")
    directory = tmp_path_factory.mktemp("nango-node")
    (directory / "package.json").write_text(json.dumps({"name": "nango-client-check", "private": True, "type": "module"}))
    result = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", f"@nangohq/node@{CLIENT_VERSION}"],
        cwd=directory, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if result.returncode != 0:
        if any(sign in result.stderr for sign in UNREACHABLE):
            reason = f"the npm registry is unreachable, @nangohq/node cannot be installed: {result.stderr.strip()[:300]}"
            print(reason)
            pytest.skip(reason)
        raise AssertionError(f"npm install @nangohq/node failed:\n{result.stderr}")
    (directory / "check.mjs").write_text(SCRIPT)
    return directory


@pytest.fixture
def slack_api() -> Iterator[SlackApi]:
    api = SlackApi()
    with ServedApp(api) as served:
        api.url = served.url
        yield api


def test_nango_node_client_lists_connections_refreshes_one_and_reads_the_scripts_config(
    nango_node, builtin, slack_api, store
):
    store.integration_credentials.put("slack", {"type": "OAUTH2", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    for connection_id, plan in (("team-1", "pro"), ("team-2", "free")):
        response = builtin.post("/connections", json={
            "provider_config_key": "slack", "connection_id": connection_id, "tags": {"plan": plan},
            "credentials": {"type": "OAUTH2", "access_token": slack_api.token, "refresh_token": slack_api.oauth.refresh_token},
            "connection_config": {"base_url": slack_api.url + "/api"},
        })  # fmt: skip
        assert response.status_code == 200, response.text

    result = subprocess.run(
        ["node", "check.mjs", str(builtin.base_url).rstrip("/"), SECRET],
        cwd=nango_node, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert [c["connection_id"] for c in out["all"]["connections"]] == ["team-1", "team-2"]
    first = out["all"]["connections"][0]
    assert first["provider_config_key"] == "slack" and first["errors"] == [] and first["tags"] == {"plan": "pro"}
    assert [c["connection_id"] for c in out["page"]["connections"]] == ["team-2"]
    assert [c["connection_id"] for c in out["search"]["connections"]] == ["team-2"]
    assert [c["connection_id"] for c in out["tagged"]["connections"]] == ["team-1"]
    connection = out["connection"]
    assert connection["connection_id"] == "team-1"
    assert connection["credentials"]["access_token"] == slack_api.token != "xoxb-slack-token", "forceRefresh refreshed it"
    assert connection["credentials"]["refresh_token"] == slack_api.oauth.refresh_token
    assert len(slack_api.oauth.grants) == 1
    slack = next(c for c in out["scripts"] if c["providerConfigKey"] == "slack")
    assert [s["name"] for s in slack["syncs"]] == ["users"] and slack["syncs"][0]["returns"] == ["SlackUser"]
