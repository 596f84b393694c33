"""The demo's walkthrough: start the demo provider and the product, create connections and variants through the
HTTP API, sync, change the demo data, sync again, and show the webhooks and the changes fetched with the cursor."""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from sync_pipeline.cli.client import Api
from sync_pipeline.cli.daemon import SENSOR_LOOP_ENV
from sync_pipeline.cli.processes import (
    PRODUCT_ONLY,
    Product,
    exit_now,
    prepare_environment,
    product_commands,
    wait_for_stop_signal,
    wait_until_answering,
)
from sync_pipeline.demo.provider import TOKEN, DemoProvider, Served

START_TIMEOUT = 120.0
RUN_TIMEOUT = 180.0
WEBHOOK_TIMEOUT = 30.0
SENSOR_LOOP_SECONDS = 1
CONNECTION = "acme"
# Variables of the caller's environment the demo must not inherit: it is self-contained, on SQLite in its own home.
NOT_INHERITED = ("SYNC_PIPELINE_DATABASE_URL", "SYNC_PIPELINE_SECRET_KEY", "SYNC_PIPELINE_WEBHOOK_URL",
                 "SYNC_PIPELINE_WEBHOOK_URL_SECONDARY",
                 "SYNC_PIPELINE_WEBHOOK_SIGNING_KEY", "SYNC_PIPELINE_INTEGRATIONS", "SYNC_PIPELINE_ENCRYPTION_KEY")  # fmt: skip


@dataclass(frozen=True)
class Stream:
    """One stream the app follows: a model of one connection's sync variant, read with its cursor."""

    integration: str
    model: str
    variant: str
    label: str


STREAMS = [
    Stream("slack", "SlackUser", "base", "Slack users"),
    Stream("salesforce", "SalesforceContact", "base", "Salesforce contacts"),
    Stream("github", "GithubIssue", "web", "GitHub issues of acme/web"),
    Stream("github", "GithubIssue", "api", "GitHub issues of acme/api"),
]


def say(text: str = "") -> None:
    click.echo(text)


def step(title: str, started: float) -> None:
    say("")
    say(click.style(f"[{time.monotonic() - started:5.1f} s] {title}", bold=True))


def run_demo(*, ui_port: int, api_port: int, home: Path | None, keep: bool) -> None:
    started = time.monotonic()
    home = home or Path(tempfile.mkdtemp(prefix="sync-pipeline-demo-"))
    provider = DemoProvider()
    served = Served(provider.app).start()
    provider.url = served.url
    for name in NOT_INHERITED:
        os.environ.pop(name, None)
    os.environ["SYNC_PIPELINE_WEBHOOK_URL"] = f"{served.url}/hooks"
    # The scheduler and webhook sensors tick every second, not every 5 s: four waits (a run to start, its webhook
    # to leave, twice) were about half of what the demo spent waiting.
    os.environ[SENSOR_LOOP_ENV] = str(SENSOR_LOOP_SECONDS)
    env = prepare_environment(home)
    quick_run_queue(home / "dagster.yaml")
    logs = home / "demo-logs"  # not "logs": Dagster keeps its compute logs there
    logs.mkdir(exist_ok=True)
    with open(logs / "processes.log", "ab") as log:  # the product's own logs; the demo's output stays readable
        # The product's code location alone: the example project of workspace.yaml would add automation runs.
        product = Product.start(product_commands(ui_port, api_port, target=PRODUCT_ONLY), env, stdout=log, stderr=log)
    ui, api_url = f"http://127.0.0.1:{ui_port}", f"http://127.0.0.1:{api_port}"
    say(click.style("sync_pipeline demo", bold=True) + " — no account needed: a demo provider speaks Slack's, Salesforce's")
    say("and GitHub's APIs over generated data, and a small receiver plays your app's webhook endpoint.")
    say(f"  demo provider: {served.url}   webhooks to: {served.url}/hooks")
    say(f"  Dagster home:  {home}   (process logs: {logs / 'processes.log'})")
    try:
        walkthrough(Api(api_url, env["SYNC_PIPELINE_SECRET_KEY"]), provider, ui, started)
    except (click.ClickException, DemoFailed) as error:
        say(click.style(f"\nthe demo stopped: {error.message if hasattr(error, 'message') else error}", fg="red"))
        say(f"see {logs / 'processes.log'}")
        product.stop()
        served.stop()
        exit_now(1)
    step("Ready to explore", started)
    say(f"  Dagster UI:  {ui}  (assets slack/SlackUser, salesforce/SalesforceContact, github/GithubIssue)")
    say(f"  HTTP API:    {api_url}  (key: {home / 'secret_key'}, docs: {api_url}/openapi.json)")
    say(f"  try:         sync-pipeline --url {api_url} --key $(cat {home / 'secret_key'}) status")
    say(f"  the demo took {time.monotonic() - started:.0f} s")
    if keep:
        say("Everything keeps running: press Ctrl-C to stop it.")
        reason = wait_for_stop_signal(product)
        say(f"stopping ({reason})...")
    product.stop()
    served.stop()
    say("stopped")
    exit_now(0)


QUEUE_CLASS = "  class: QueuedRunCoordinator\n"
QUICK_QUEUE = "  config:\n    dequeue_interval_seconds: 1\n    dequeue_use_threads: true\n    dequeue_num_workers: 4\n"


def quick_run_queue(instance_yaml: Path) -> None:
    """Launch the demo's queued runs in parallel, every second: on a busy laptop a run takes seconds to launch,
    and one after another (Dagster's default) four of them would make the demo wait half a minute more."""
    text = instance_yaml.read_text()
    if QUEUE_CLASS in text and "dequeue_" not in text:
        instance_yaml.write_text(text.replace(QUEUE_CLASS, QUEUE_CLASS + QUICK_QUEUE))


class DemoFailed(Exception):
    pass


def walkthrough(api: Api, provider: DemoProvider, ui: str, started: float) -> None:
    step("Starting Dagster's UI and daemon and the HTTP API", started)
    wait_until_up(api.url + "/health", ui + "/server_info")
    say("  up")

    step("Creating connections through the HTTP API (connection_config.base_url points at the demo provider)", started)
    base = provider.url
    create_connection(api, "slack", {"base_url": f"{base}/slack/api"}, {})
    create_connection(api, "salesforce", {"base_url": f"{base}/salesforce"}, {"backfill_days": 365})
    create_connection(api, "github", {"base_url": f"{base}/github"},
                      {"web": {"owner": "acme", "repo": "web"}, "api": {"owner": "acme", "repo": "api"}})  # fmt: skip
    for variant in ("web", "api"):
        api.post(f"/sync/issues/variant/{variant}", json={"provider_config_key": "github", "connection_id": CONNECTION})
        say(f"  POST /sync/issues/variant/{variant}: GitHub issues of acme/{variant}, a variant with its own schedule")
    say("  (no `base` GitHub variant: the metadata lists no `repositories`, so it would sync nothing)")

    step("First sync of every connection (runs launched by the scheduler sensor)", started)
    wait_for_runs(api, {})
    cursors: dict[Stream, str | None] = {stream: None for stream in STREAMS}
    seen = show_webhooks(provider, 0, expected=len(STREAMS))
    show_changes(api, cursors, detailed=False)

    step("Changing the demo data", started)
    for line in change_demo_data(provider):
        say(f"  {line}")

    step("Second sync, triggered through the HTTP API (POST /sync/trigger)", started)
    before = {sync["id"]: sync.get("finishedAt") for sync in all_statuses(api)}
    for integration in ("slack", "salesforce", "github"):
        api.post("/sync/trigger", json={"provider_config_key": integration, "connection_id": CONNECTION, "syncs": []})
    wait_for_runs(api, before)
    show_webhooks(provider, seen, expected=len(STREAMS))
    show_changes(api, cursors, detailed=True)


def wait_until_up(*urls: str) -> None:
    if not wait_until_answering(*urls, timeout=START_TIMEOUT):
        raise DemoFailed(f"{' and '.join(urls)} did not answer within {START_TIMEOUT:.0f} s")


def create_connection(api: Api, integration: str, config: dict[str, Any], metadata: dict[str, Any]) -> None:
    api.post("/connections", json={
        "provider_config_key": integration, "connection_id": CONNECTION,
        "credentials": {"type": "OAUTH2", "access_token": TOKEN}, "connection_config": config, "metadata": metadata,
    })  # fmt: skip
    say(f"  POST /connections {integration}/{CONNECTION}" + (f"  metadata {metadata}" if metadata else ""))


def all_statuses(api: Api) -> list[dict[str, Any]]:
    return [
        sync
        for integration in ("slack", "salesforce", "github")
        for sync in api.get("/sync/status", params={"provider_config_key": integration, "connection_id": CONNECTION, "syncs": "*"})["syncs"]
    ]


def wait_for_runs(api: Api, before: dict[str, Any]) -> None:
    """Until every partition has a run finished since `before`; one line per finished run."""
    deadline = time.monotonic() + RUN_TIMEOUT
    reported: set[str] = set()
    while True:
        syncs = all_statuses(api)
        for sync in syncs:
            finished = sync.get("finishedAt") not in (None, before.get(sync["id"])) and sync["status"] != "RUNNING"
            if finished and sync["id"] not in reported:
                reported.add(sync["id"])
                records = ", ".join(f"{count} {model}" for model, count in sync["recordCount"].items())
                result = " ".join(f"+{c['added']} ~{c['updated']} -{c['deleted']}" for c in sync["latestResult"].values())
                line = f"  {sync['status']:<7} {sync['id']:<42} {sync['type']:<11} {result:<14} now {records}"
                if sync.get("error"):
                    line += f"  error: {sync['error']['type']}: {sync['error']['message']}"
                say(line)
        if len(reported) == len(syncs):
            if any(sync["status"] == "ERROR" for sync in syncs):
                raise DemoFailed("a sync failed (its error is above)")
            return
        if time.monotonic() > deadline:
            raise DemoFailed(f"the syncs did not finish within {RUN_TIMEOUT:.0f} s")
        time.sleep(0.5)


def show_webhooks(provider: DemoProvider, seen: int, *, expected: int) -> int:
    """Print the change webhooks received since `seen` (waiting for `expected` of them); returns the new count."""
    deadline = time.monotonic() + WEBHOOK_TIMEOUT
    while len(provider.webhooks) - seen < expected and time.monotonic() < deadline:
        time.sleep(0.3)
    say("  Webhooks your app received (POST /hooks):")
    for hook in provider.webhooks[seen:]:
        body = hook.body
        if body.get("success"):
            counts = body["responseResults"]
            say(f"    {body['syncType']:<11} {body['providerConfigKey']}/{body['connectionId']} {body['syncName']} "
                f"variant {body['syncVariant']:<4} {body['model']:<17} added {counts['added']:>2}, updated "
                f"{counts['updated']:>2}, deleted {counts['deleted']:>2}  (changes since {body['modifiedAfter']})")  # fmt: skip
        else:
            say(f"    FAILED {body['providerConfigKey']}/{body['connectionId']} {body['syncName']}: {body['error']['description']}")
    return len(provider.webhooks)


def show_changes(api: Api, cursors: dict[Stream, str | None], *, detailed: bool) -> None:
    """Fetch each stream's changes after the cursor the app kept (GET /records?cursor=...), as an app would."""
    say("  Changes fetched with the cursor (GET /records?cursor=<last cursor seen>):")
    for stream, cursor in cursors.items():
        records, cursor = fetch_changes(api, stream, cursor)
        cursors[stream] = cursor
        actions = Counter(record["_nango_metadata"]["last_action"] for record in records)
        summary = ", ".join(f"{count} {action.lower()}" for action, count in sorted(actions.items())) or "nothing new"
        say(f"    {stream.label:<27} {len(records):>3} record(s): {summary}; cursor now {cursor or '-'}")
        if detailed:
            for record in records:
                say(f"      {record['_nango_metadata']['last_action']:<8} {describe(stream, record)}")


def fetch_changes(api: Api, stream: Stream, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    headers = {"Connection-Id": CONNECTION, "Provider-Config-Key": stream.integration}
    found: list[dict[str, Any]] = []
    while True:
        params = {"model": stream.model, "variant": stream.variant, "limit": 100, **({"cursor": cursor} if cursor else {})}
        page = api.get("/records", params=params, headers=headers)
        found += page["records"]
        if page["records"]:
            cursor = page["records"][-1]["_nango_metadata"]["cursor"]
        if not page["next_cursor"]:
            return found, cursor


def describe(stream: Stream, record: dict[str, Any]) -> str:
    if stream.integration == "slack":
        return f"{record['id']} {record.get('real_name')} <{record.get('email')}>"
    if stream.integration == "salesforce":
        return f"{record['id']} {record.get('first_name')} {record.get('last_name')} ({record.get('title')})"
    return f"#{record.get('number')} [{record.get('state')}] {record.get('title')}"


def change_demo_data(provider: DemoProvider) -> list[str]:
    """What happens at the provider between the two syncs; returns what changed, in words."""
    data = provider.data
    lines = []
    data.put_member("U0100", "Dana Scully")
    data.put_member("U0101", "Fox Mulder")
    renamed = data.slack["U0002"]["real_name"]
    data.put_member("U0002", f"{renamed.split()[0]} Quantum")
    departed = data.slack.pop("U0003")["real_name"]
    lines.append(f"Slack: Dana Scully and Fox Mulder join, {renamed} becomes {renamed.split()[0]} Quantum, {departed} leaves")
    first = data.contacts["003DEMO00000001"]
    data.put_contact("003DEMO00000001", first["FirstName"], first["LastName"], Title="VP Engineering")
    data.put_contact("003DEMO00000099", "Jean", "Bartik")
    data.delete_contact("003DEMO00000002")
    lines.append(f"Salesforce: {first['FirstName']} {first['LastName']} promoted to VP Engineering, Jean Bartik added, "
                 f"contact 003DEMO00000002 deleted")  # fmt: skip
    for number in (1, 2):
        issue = data.issues["acme/web"][number]
        data.put_issue("acme/web", number, issue["title"], state="closed")
    data.put_issue("acme/web", 24, "Checkout button hidden on mobile")
    edited = data.issues["acme/api"][3]
    data.put_issue("acme/api", 3, edited["title"] + " (reproduced)", state=edited["state"])
    lines.append("GitHub: acme/web issues #1 and #2 closed, #24 opened; acme/api issue #3 retitled")
    return lines
