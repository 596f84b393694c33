"""The operator's commands against a served API: tables by default, `--json`, and exit codes a script can trust
(0 done, 1 the API refused, 2 wrong usage, 3 no deployment reached, 4 `trigger --wait` timed out)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib.metadata import version

import pytest
from click.testing import CliRunner

from sync_pipeline.api import create_app
from sync_pipeline.cli import main
from sync_pipeline.store import FAILED, Attempt, utcnow
from sync_pipeline_tests.acme import registry
from sync_pipeline_tests.cli.processes import free_port
from sync_pipeline_tests.fakes.server import ServedApp

SECRET = "operator-secret"


@pytest.fixture
def api_url(instance, store) -> Iterator[str]:
    app = create_app(registry=registry, instance=instance, store=store, secret_key=SECRET)
    with ServedApp(app) as served:
        yield served.url


@pytest.fixture
def cli(api_url, monkeypatch):
    """`sync-pipeline --url <the served API> --key <its key> ...`, from a folder with no deployment."""
    monkeypatch.delenv("SYNC_PIPELINE_SECRET_KEY", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)

    def run(*args: str, key: str | None = SECRET, url: str = api_url, input: str | None = None):
        options = ["--url", url] + (["--key", key] if key else [])
        return CliRunner().invoke(main, [*options, *args], catch_exceptions=False, input=input)

    return run


@pytest.fixture
def connected(cli, acme):
    result = cli("connections", "add", "acme", "conn-1", "--api-key", acme.token, "--base-url", acme.url,
                 "--metadata", '{"region": "eu"}')  # fmt: skip
    assert result.exit_code == 0, result.output
    return acme


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"sync-pipeline, version {version('sync_pipeline')}"


def test_every_command_has_help():
    for path in (["connections", "add"], ["connections", "list"], ["connections", "show"], ["connections", "delete"],
                 ["metadata", "get"], ["metadata", "set"], ["variants", "add"], ["variants", "list"],
                 ["variants", "delete"], ["trigger"], ["status"], ["records"], ["deliveries", "list"],
                 ["deliveries", "retry"], ["dev"], ["demo"], ["serve"]):  # fmt: skip
        result = CliRunner().invoke(main, [*path, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output, path


def test_connections_are_listed_as_a_table_or_json_and_shown_without_their_secret(cli, connected):
    table = cli("connections", "list")
    listed = json.loads(cli("connections", "list", "--json").output)
    shown = cli("connections", "show", "acme", "conn-1")

    assert table.exit_code == 0
    assert table.output.splitlines()[0].split() == ["INTEGRATION", "CONNECTION", "CREATED", "ERRORS"]
    assert table.output.splitlines()[1].split()[:2] == ["acme", "conn-1"]
    assert [(c["provider_config_key"], c["connection_id"], c["errors"]) for c in listed] == [("acme", "conn-1", [])]
    assert shown.exit_code == 0
    assert "API_KEY" in shown.output and connected.token not in shown.output
    assert any(line.split()[:3] == ["conn-1", "contacts", "base"] for line in shown.output.splitlines())  # its syncs


def test_an_unknown_connection_is_exit_code_1_with_the_apis_message(cli, connected):
    result = cli("connections", "show", "acme", "nobody")

    assert result.exit_code == 1
    assert "there is no connection 'nobody' of 'acme'" in result.output and "unknown_connection" in result.output


def test_metadata_is_replaced_merged_and_read(cli, connected):
    assert cli("metadata", "set", "acme", "conn-1", '{"region": "us"}', "--merge").exit_code == 0
    assert cli("metadata", "set", "acme", "conn-1", '{"tier": "gold"}', "--merge").exit_code == 0

    assert json.loads(cli("metadata", "get", "acme", "conn-1", "--json").output) == {"region": "us", "tier": "gold"}
    assert cli("metadata", "get", "acme", "conn-1").output.splitlines()[1].split() == ["region", "us"]
    bad = cli("metadata", "set", "acme", "conn-1", "[1, 2]")
    assert bad.exit_code == 2 and "must be a JSON object" in bad.output


def test_variants_are_added_with_their_settings_listed_and_deleted(cli, connected):
    added = cli("variants", "add", "acme", "conn-1", "directory", "example", "--metadata", '{"domain": "example.com"}')

    assert added.exit_code == 0, added.output
    listed = json.loads(cli("variants", "list", "acme", "conn-1", "--sync", "directory", "--json").output)
    assert [(v["name"], v["variant"]) for v in listed] == [("directory", "base"), ("directory", "example")]
    assert json.loads(cli("metadata", "get", "acme", "conn-1", "--json").output)["example"] == {"domain": "example.com"}
    assert cli("variants", "delete", "acme", "conn-1", "directory", "example").exit_code == 0
    again = cli("variants", "delete", "acme", "conn-1", "directory", "example")
    assert again.exit_code == 1 and "not_found" in again.output


def test_trigger_queues_a_run_in_the_mode_asked(cli, connected, store):
    result = cli("trigger", "acme", "conn-1", "contacts", "--mode", "full_refresh")

    assert result.exit_code == 0 and "acme__contacts/conn-1::base" in result.output
    [row] = [row for row in store.partitions.due(utcnow()) if row.sync_name == "contacts"]
    assert row.trigger_mode == "full_refresh" and not row.trigger_allow_mass_delete


def test_trigger_with_allow_mass_delete_lets_that_run_through_the_guard(cli, connected, store):
    result = cli("trigger", "acme", "conn-1", "contacts", "--allow-mass-delete")

    assert result.exit_code == 0
    [row] = [row for row in store.partitions.due(utcnow()) if row.sync_name == "contacts"]
    assert row.trigger_mode == "incremental" and row.trigger_allow_mass_delete


def test_status_and_records_after_a_sync(cli, connected, harness):
    connected.put("c1", "Ann")
    connected.put("c2", "Bob")
    connected.put("c3", "Cid")
    assert harness.run("acme", "contacts", "conn-1").success

    status = cli("status", "acme", "conn-1")
    first = cli("records", "acme", "conn-1", "AcmeContact", "--limit", "2")
    page = json.loads(cli("records", "acme", "conn-1", "AcmeContact", "--limit", "2", "--json").output)
    rest = json.loads(cli("records", "acme", "conn-1", "AcmeContact", "--cursor", page["next_cursor"], "--json").output)

    assert status.exit_code == 0
    [contacts] = [line for line in status.output.splitlines() if " contacts " in line]
    assert "SUCCESS" in contacts and "AcmeContact 3" in contacts
    assert [line.split()[:2] for line in first.output.splitlines()[1:3]] == [["c1", "ADDED"], ["c2", "ADDED"]]
    assert first.output.splitlines()[-1] == f"next cursor: {page['next_cursor']}"
    assert [r["id"] for r in rest["records"]] == ["c3"] and rest["next_cursor"] is None


def test_a_failed_delivery_is_listed_and_retried(cli, connected, store):
    store.deliveries.enqueue("m-42", "https://app.example/hooks", '{"connectionId": "conn-1", "success": true}')
    now = utcnow()
    for _ in range(8):
        store.deliveries.record_attempt("m-42", Attempt(delivered=False, error="HTTP 500", retryable=True), now)
    assert store.deliveries.get("m-42").status == FAILED

    listed = cli("deliveries", "list", "--status", "failed")
    retried = cli("deliveries", "retry", "m-42")

    assert listed.exit_code == 0 and "m-42" in listed.output and "HTTP 500" in listed.output
    assert retried.exit_code == 0
    delivery = store.deliveries.get("m-42")
    assert (delivery.status, delivery.attempts) == ("pending", 0)
    unknown = cli("deliveries", "retry", "m-999")
    assert unknown.exit_code == 1 and "there is no webhook delivery 'm-999'" in unknown.output


def test_an_api_that_does_not_answer_is_exit_code_3(cli):
    result = cli("connections", "list", url=f"http://127.0.0.1:{free_port()}")

    assert result.exit_code == 3
    assert "cannot reach the sync_pipeline API" in result.output and "sync-pipeline dev" in result.output


def test_without_a_key_nothing_is_created_and_it_says_where_it_looked(cli, tmp_path, monkeypatch):
    elsewhere = tmp_path / "another-folder"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    result = cli("deliveries", "list", key=None)

    assert result.exit_code == 3
    assert "no secret key" in result.output and str(elsewhere / ".dagster_home" / "secret_key") in result.output
    assert list(elsewhere.iterdir()) == []  # no new .dagster_home


def test_serve_refuses_to_start_without_a_deployment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)

    result = CliRunner().invoke(main, ["serve", "--port", str(free_port())])

    assert result.exit_code == 3 and "no sync_pipeline deployment" in result.output
    assert not (tmp_path / ".dagster_home").exists()


def test_connections_delete_asks_first_unless_yes(cli, connected):
    aborted = cli("connections", "delete", "acme", "conn-1", input="n\n")
    assert aborted.exit_code == 1 and "Aborted" in aborted.output
    assert len(json.loads(cli("connections", "list", "--json").output)) == 1

    assert cli("connections", "delete", "acme", "conn-1", "--yes").exit_code == 0
    assert json.loads(cli("connections", "list", "--json").output) == []


def test_integration_credentials_refuses_to_create_a_deployment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("DAGSTER_HOME", "SYNC_PIPELINE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)

    result = CliRunner().invoke(main, ["integration-credentials", "slack", "--client-id", "x", "--client-secret", "y"])

    assert result.exit_code == 3 and "no sync_pipeline deployment" in result.output
    assert not (tmp_path / ".dagster_home").exists()


def test_trigger_wait_prints_a_live_line_of_pages_records_and_rate(cli, connected, harness, monkeypatch):
    import threading

    for n in range(10):
        connected.put(f"c{n:02}", f"Name{n}")
    connected.page_delay = 0.6
    monkeypatch.setenv("SYNC_PIPELINE_PROGRESS_SECONDS", "0.5")
    run = threading.Thread(target=harness.run, args=("acme", "contacts", "conn-1"))  # the run the trigger asks for
    run.start()
    try:
        result = cli("trigger", "acme", "conn-1", "contacts", "--wait", "--timeout", "60")
    finally:
        run.join()

    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "contacts base running" in line]
    assert any(" pages, " in line and " fetched, " in line and " saved (" in line and "/s)" in line for line in lines), lines
    assert "SUCCESS" in result.output.splitlines()[-1]
