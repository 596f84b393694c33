"""`sync-pipeline demo` as a newcomer runs it: what it prints, and what the records API says afterwards."""

from __future__ import annotations

import re

import httpx
import pytest

from sync_pipeline_tests.cli.processes import Command, free_port, port_closed


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo, left running after its walkthrough (as it is by default)."""
    home = tmp_path_factory.mktemp("demo_home")
    ui_port, api_port = free_port(), free_port()
    command = Command("demo", "--ui-port", str(ui_port), "--api-port", str(api_port), "--home", str(home))
    try:
        command.wait_for_line("press Ctrl-C to stop it", timeout=1200)  # generous: a loaded CI machine
        yield command, home, ui_port, api_port
    finally:
        command.kill()


def _api(home, api_port) -> httpx.Client:
    key = (home / "secret_key").read_text().strip()
    return httpx.Client(base_url=f"http://127.0.0.1:{api_port}", headers={"Authorization": f"Bearer {key}"}, timeout=30)


def _records(client: httpx.Client, integration: str, model: str, variant: str) -> list[dict]:
    headers = {"Connection-Id": "acme", "Provider-Config-Key": integration}
    found, cursor = [], None
    while True:
        params = {"model": model, "variant": variant, "limit": 100, **({"cursor": cursor} if cursor else {})}
        page = client.get("/records", params=params, headers=headers).json()
        found += page["records"]
        cursor = page["next_cursor"]
        if not cursor:
            return found


def test_the_demo_walks_through_two_syncs_and_leaves_the_ui_running(demo):
    command, home, ui_port, api_port = demo
    output = command.output()

    # Two rounds, each of four sync partitions (Slack, Salesforce, two GitHub variants), all successful.
    runs = re.findall(r"^\s+(SUCCESS|ERROR)\s+(\S+)\s+(INITIAL|INCREMENTAL|FULL)\s", output, re.MULTILINE)
    assert [status for status, _, _ in runs] == ["SUCCESS"] * 8, output
    assert {partition for _, partition, kind in runs if kind == "INITIAL"} == {
        "slack__users/acme::base", "salesforce__contacts/acme::base", "github__issues/acme::web", "github__issues/acme::api",
    }  # fmt: skip
    # The webhooks the app received: four INITIAL ones, then four INCREMENTAL ones with the changes.
    webhooks = re.findall(r"^\s+(INITIAL|INCREMENTAL)\s+(\S+) (\S+) variant (\S+)\s+(\S+)\s+added\s+(\d+), updated\s+(\d+), "
                          r"deleted\s+(\d+)", output, re.MULTILINE)  # fmt: skip
    assert sorted(kind for kind, *_ in webhooks) == ["INCREMENTAL"] * 4 + ["INITIAL"] * 4, output
    assert "no `base` GitHub variant" in output
    assert f"Dagster UI:  http://127.0.0.1:{ui_port}" in output

    # What the webhooks announced is what the records API holds, stream by stream.
    with _api(home, api_port) as client:
        for kind, owner, sync, variant, model, added, updated, deleted in webhooks:
            integration = owner.split("/")[0]
            records = _records(client, integration, model, variant)
            actions = [r["_nango_metadata"]["last_action"] for r in records]
            if kind == "INCREMENTAL":
                assert actions.count("DELETED") == int(deleted), (integration, variant)
                assert actions.count("UPDATED") == int(updated), (integration, variant)
        initial = {(owner.split("/")[0], variant): int(added) for kind, owner, _, variant, _, added, _, _ in webhooks if kind == "INITIAL"}
        slack = _records(client, "slack", "SlackUser", "base")
        assert len(slack) == initial[("slack", "base")] + 2  # two members joined in the second round
        assert "Slack users                   4 record(s): 2 added, 1 deleted, 1 updated" in output
        # The UI the demo says it leaves running answers.
        assert httpx.get(f"http://127.0.0.1:{ui_port}/server_info", timeout=10).status_code == 200


def test_ctrl_c_stops_the_demo_within_five_seconds(demo):
    command, _home, ui_port, api_port = demo

    took = command.interrupt()

    assert took < 5, f"Ctrl-C took {took:.1f} s"
    assert command.process.returncode == 0
    assert port_closed(ui_port) and port_closed(api_port)
