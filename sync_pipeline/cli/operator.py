"""The operator's commands: connections, metadata, variants, trigger, status, records, deliveries (over the HTTP API)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from sync_pipeline.cli.client import Api
from sync_pipeline.cli.output import Table, emit, key_values

TIMED_OUT = 4  # `trigger --wait` gave up waiting (the runs may still finish)
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON instead of a table.")


def api_of(ctx: click.Context) -> Api:
    return ctx.find_object(Api)


def _json_argument(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as error:
        raise click.BadParameter(f"{what} must be a JSON object: {error}") from None
    if not isinstance(value, dict):
        raise click.BadParameter(f"{what} must be a JSON object, not {type(value).__name__}")
    return value


# -- connections ------------------------------------------------------------------------------------------


@click.group()
def connections() -> None:
    """Add, list, show and delete connections (an end user's account at a provider)."""


@connections.command("add")
@click.argument("integration")
@click.argument("connection_id")
@click.option("--token", help="An OAuth2 access token (sent as Authorization: Bearer).")
@click.option("--api-key", help="An API key.")
@click.option("--basic", metavar="USER:PASSWORD", help="HTTP Basic credentials.")
@click.option("--base-url", help="Replace the provider's API root (sandboxes, proxies, a local fake).")
@click.option("--config", "config_pairs", multiple=True, metavar="KEY=VALUE", help="connection_config entries (repeatable).")
@click.option("--metadata", "metadata_json", metavar="JSON", help="The connection's metadata, a JSON object.")
@click.option("--webhook-url", help="Send this connection's change webhooks here instead of the default.")
@JSON_OPTION
@click.pass_context
def connections_add(ctx, integration, connection_id, token, api_key, basic, base_url, config_pairs, metadata_json, webhook_url, as_json):
    """Create a connection (or update the one with the same INTEGRATION and CONNECTION_ID); its syncs start."""
    chosen = [name for name, value in (("--token", token), ("--api-key", api_key), ("--basic", basic)) if value]
    if len(chosen) > 1:
        raise click.UsageError(f"give one kind of credentials, not {' and '.join(chosen)}")
    if token:
        credentials: dict[str, Any] = {"type": "OAUTH2", "access_token": token}
    elif api_key:
        credentials = {"type": "API_KEY", "apiKey": api_key}
    elif basic:
        user, sep, password = basic.partition(":")
        if not sep:
            raise click.BadParameter("use USER:PASSWORD", param_hint="--basic")
        credentials = {"type": "BASIC", "username": user, "password": password}
    else:
        credentials = {"type": "NONE"}
    config: dict[str, Any] = {}
    for pair in config_pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--config")
        config[key] = value
    if base_url:
        config["base_url"] = base_url
    body: dict[str, Any] = {"provider_config_key": integration, "connection_id": connection_id, "credentials": credentials,
                            "connection_config": config}  # fmt: skip
    if metadata_json:
        body["metadata"] = _json_argument(metadata_json, "--metadata")
    if webhook_url:
        body["webhook_url_override"] = webhook_url
    created = _without_secrets(api_of(ctx).post("/connections", json=body))
    emit(created, as_json, f"connection {integration}/{connection_id} saved; its syncs are scheduled "
                           f"(see `sync-pipeline status {integration} {connection_id}`)")


@connections.command("list")
@click.option("--integration", help="Only this integration's connections.")
@click.option("--connection", "connection_id", help="Only connections with this id.")
@JSON_OPTION
@click.pass_context
def connections_list(ctx, integration, connection_id, as_json):
    """Every connection, with what is wrong with it: failed credentials, syncs whose latest run failed."""
    params = {k: v for k, v in (("integrationId", integration), ("connectionId", connection_id)) if v}
    found = api_of(ctx).get("/connections", params=params)["connections"]
    rows = [
        (c["provider_config_key"], c["connection_id"], c["created"], _errors_cell(c["errors"]))
        for c in found
    ]
    emit(found, as_json, Table(("INTEGRATION", "CONNECTION", "CREATED", "ERRORS"), rows, empty="no connections"))


def _errors_cell(errors: list[dict[str, Any]]) -> str:
    if not errors:
        return "-"
    return "; ".join(f"{e.get('type')}: {e.get('message')}" for e in errors)


@connections.command("show")
@click.argument("integration")
@click.argument("connection_id")
@JSON_OPTION
@click.pass_context
def connections_show(ctx, integration, connection_id, as_json):
    """One connection (credentials hidden), its syncs and their status."""
    api = api_of(ctx)
    connection = _without_secrets(api.get(f"/connections/{connection_id}", params={"provider_config_key": integration}))
    syncs = _status(api, integration, connection_id)
    if as_json:
        emit({**connection, "syncs": syncs}, True)
        return
    click.echo(key_values([
        ("integration", connection["provider_config_key"]), ("connection", connection["connection_id"]),
        ("credentials", connection["credentials"]), ("connection_config", connection["connection_config"]),
        ("metadata", connection["metadata"]), ("created", connection["created_at"]), ("updated", connection["updated_at"]),
    ]))  # fmt: skip
    click.echo("")
    click.echo(status_table(syncs).render())


def _without_secrets(connection: dict[str, Any]) -> dict[str, Any]:
    """The CLI never prints credentials: only their type (the API hands them to the app, not to terminals)."""
    credentials = connection.get("credentials") or {}
    return {**connection, "credentials": {"type": credentials.get("type", "NONE"), "hidden": True}}


@connections.command("delete")
@click.argument("integration")
@click.argument("connection_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@JSON_OPTION
@click.pass_context
def connections_delete(ctx, integration, connection_id, yes, as_json):
    """Delete a connection with its syncs, schedules and records."""
    if not yes:
        click.confirm(f"Delete {integration}/{connection_id} with all its records?", abort=True)
    result = api_of(ctx).request("DELETE", f"/connections/{connection_id}", params={"provider_config_key": integration})
    emit(result, as_json, f"connection {integration}/{connection_id} deleted")


# -- metadata ---------------------------------------------------------------------------------------------


@click.group()
def metadata() -> None:
    """Read and write a connection's metadata (customer-specific settings a sync reads)."""


@metadata.command("get")
@click.argument("integration")
@click.argument("connection_id")
@JSON_OPTION
@click.pass_context
def metadata_get(ctx, integration, connection_id, as_json):
    """Print the connection's metadata."""
    found = api_of(ctx).get(f"/connections/{connection_id}", params={"provider_config_key": integration})["metadata"]
    rows = [(key, value) for key, value in found.items()]
    emit(found, as_json, Table(("KEY", "VALUE"), rows, empty="no metadata"))


@metadata.command("set")
@click.argument("integration")
@click.argument("connection_id")
@click.argument("metadata_json", metavar="JSON")
@click.option("--merge", is_flag=True, help="Merge these top-level keys into the metadata instead of replacing it.")
@JSON_OPTION
@click.pass_context
def metadata_set(ctx, integration, connection_id, metadata_json, merge, as_json):
    """Replace (or with --merge, update) the connection's metadata with a JSON object."""
    body = {"provider_config_key": integration, "connection_id": connection_id,
            "metadata": _json_argument(metadata_json, "JSON")}  # fmt: skip
    result = api_of(ctx).request("PATCH" if merge else "POST", "/connections/metadata", json=body)
    emit(result, as_json, f"metadata of {integration}/{connection_id} {'merged' if merge else 'replaced'}")


# -- variants ---------------------------------------------------------------------------------------------


@click.group()
def variants() -> None:
    """Add, list and delete variants of a sync (e.g. one per GitHub repository)."""


@variants.command("add")
@click.argument("integration")
@click.argument("connection_id")
@click.argument("sync_name", metavar="SYNC")
@click.argument("variant")
@click.option("--metadata", "metadata_json", metavar="JSON",
              help='Its settings, stored as metadata[VARIANT] (GitHub: {"owner": "...", "repo": "..."}).')
@JSON_OPTION
@click.pass_context
def variants_add(ctx, integration, connection_id, sync_name, variant, metadata_json, as_json):
    """Create a variant of SYNC for a connection; it runs at once."""
    api = api_of(ctx)
    if metadata_json:  # before the variant exists, so that its first run finds its settings
        settings = _json_argument(metadata_json, "--metadata")
        api.request("PATCH", "/connections/metadata", json={
            "provider_config_key": integration, "connection_id": connection_id, "metadata": {variant: settings}})  # fmt: skip
    body = {"provider_config_key": integration, "connection_id": connection_id}
    created = api.post(f"/sync/{sync_name}/variant/{variant}", json=body)
    emit(created, as_json, f"variant {variant!r} of {integration} {sync_name} created for {connection_id} (id {created['id']})")


@variants.command("list")
@click.argument("integration")
@click.argument("connection_id")
@click.option("--sync", "sync_name", help="Only this sync's variants.")
@JSON_OPTION
@click.pass_context
def variants_list(ctx, integration, connection_id, sync_name, as_json):
    """The connection's sync partitions: every sync and variant."""
    syncs = [s for s in _status(api_of(ctx), integration, connection_id) if not sync_name or s["name"] == sync_name]
    rows = [(s["name"], s["variant"], s["status"], s["frequency"], s["id"]) for s in syncs]
    emit(syncs, as_json, Table(("SYNC", "VARIANT", "STATUS", "FREQUENCY", "ID"), rows, empty="no syncs"))


@variants.command("delete")
@click.argument("integration")
@click.argument("connection_id")
@click.argument("sync_name", metavar="SYNC")
@click.argument("variant")
@JSON_OPTION
@click.pass_context
def variants_delete(ctx, integration, connection_id, sync_name, variant, as_json):
    """Delete a variant with its schedule, checkpoint and records."""
    body = {"provider_config_key": integration, "connection_id": connection_id}
    result = api_of(ctx).request("DELETE", f"/sync/{sync_name}/variant/{variant}", json=body)
    emit(result, as_json, f"variant {variant!r} of {integration} {sync_name} deleted for {connection_id}")


# -- status and trigger -----------------------------------------------------------------------------------


def _status(api: Api, integration: str, connection_id: str | None, syncs: str = "*") -> list[dict[str, Any]]:
    params = {"provider_config_key": integration, "syncs": syncs, **({"connection_id": connection_id} if connection_id else {})}
    return api.get("/sync/status", params=params)["syncs"]


def status_table(syncs: list[dict[str, Any]]) -> Table:
    rows = [
        (s["connection_id"], s["name"], s["variant"], s["status"], s.get("finishedAt"), _records_cell(s),
         s.get("nextScheduledSyncAt"), _error_cell(s))
        for s in syncs
    ]  # fmt: skip
    return Table(("CONNECTION", "SYNC", "VARIANT", "STATUS", "FINISHED", "RECORDS", "NEXT RUN", "ERROR"), rows, empty="no syncs")


def _records_cell(sync: dict[str, Any]) -> str:
    counts = sync.get("recordCount") or {}
    return ", ".join(f"{model} {count:,}" for model, count in counts.items()) or "-"


def _error_cell(sync: dict[str, Any]) -> str:
    error = sync.get("error")
    return f"{error['type']}: {error['message']}" if error else "-"


@click.command()
@click.argument("integration", required=False)
@click.argument("connection_id", required=False)
@JSON_OPTION
@click.pass_context
def status(ctx, integration, connection_id, as_json):
    """Each sync partition: status, last run, records, next run, and why its latest run failed."""
    api = api_of(ctx)
    if integration:
        integrations = [integration]
    else:  # every integration that has a connection
        integrations = sorted({c["provider_config_key"] for c in api.get("/connections")["connections"]})
    syncs = [sync for name in integrations for sync in _status(api, name, connection_id)]
    emit(syncs, as_json, status_table(syncs))
    if any(s["status"] == "ERROR" for s in syncs):
        ctx.exit(1)


MODES = ("incremental", "full_refresh", "full_refresh_and_clear_cache")


@click.command()
@click.argument("integration")
@click.argument("connection_id")
@click.argument("syncs", nargs=-1, metavar="[SYNC[::VARIANT]]...")
@click.option("--mode", type=click.Choice(MODES), default="incremental", show_default=True,
              help="full_refresh forgets the checkpoint; full_refresh_and_clear_cache also replaces the records.")
@click.option("--allow-mass-delete", is_flag=True,
              help="Let this run delete more of the records than the mass-deletion guard allows (50% by default).")
@click.option("--wait", is_flag=True, help="Wait for the runs to finish, showing their progress.")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds --wait waits at most.")
@JSON_OPTION
@click.pass_context
def trigger(ctx, integration, connection_id, syncs, mode, allow_mass_delete, wait, timeout, as_json):
    """Run syncs of a connection now (all of them when no SYNC is named)."""
    api = api_of(ctx)
    selector = ",".join(syncs) or "*"
    before = {s["id"]: s.get("finishedAt") for s in _status(api, integration, connection_id, selector)}
    api.post("/sync/trigger", json={"provider_config_key": integration, "connection_id": connection_id,
                                   "syncs": list(syncs), "sync_mode": mode,
                                   **({"opts": {"allowMassDelete": True}} if allow_mass_delete else {})})  # fmt: skip
    if not wait:
        emit({"success": True, "triggered": sorted(before)}, as_json, f"triggered {len(before)} sync(s): {', '.join(sorted(before))}")
        return
    finished = _wait(api, integration, connection_id, selector, before, timeout, quiet=as_json)
    if finished is None:
        click.echo(f"timed out after {timeout:.0f} s; the runs go on (see `sync-pipeline status {integration} {connection_id}`)", err=True)
        ctx.exit(TIMED_OUT)
    emit(finished, as_json, status_table(finished))
    if any(s["status"] == "ERROR" for s in finished):
        ctx.exit(1)


def _wait(api: Api, integration: str, connection_id: str, selector: str, before: dict[str, Any], timeout: float,
          *, quiet: bool) -> list[dict[str, Any]] | None:  # fmt: skip
    """Poll /sync/status until every partition has a run finished since the trigger; a live line meanwhile."""
    started = time.monotonic()
    line = ProgressLine(enabled=not quiet)
    while time.monotonic() - started < timeout:
        current = _status(api, integration, connection_id, selector)
        done = [s for s in current if s.get("finishedAt") != before.get(s["id"]) and s["status"] != "RUNNING"]
        if len(done) == len(current):
            line.close()
            return current
        line.show(progress_text(current, done, time.monotonic() - started))
        time.sleep(1.0)
    line.close()
    return None


def progress_text(current: list[dict[str, Any]], done: list[dict[str, Any]], elapsed: float) -> str:
    """`1/3 done, 14 s: users base RUNNING 12 pages, 2,400 fetched, 2,398 saved (400/s)`."""
    finished = {s["id"] for s in done}
    parts = []
    for sync in current:
        if sync["id"] in finished:
            continue
        text = f"{sync['name']} {sync['variant']} {'running' if sync['status'] == 'RUNNING' else 'queued'}"
        progress = sync.get("progress")
        if isinstance(progress, dict) and progress:
            text += (f" {progress.get('pages', 0):,} pages, {progress.get('records_fetched', 0):,} fetched, "
                     f"{progress.get('records_saved', 0):,} saved ({progress.get('records_per_second', 0):,.0f}/s)")  # fmt: skip
        parts.append(text)
    return f"{len(done)}/{len(current)} done, {elapsed:.0f} s: " + "; ".join(parts)


class ProgressLine:
    """One line rewritten in place on a terminal; elsewhere (a log, a pipe) a new line when it changes."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled, self.tty, self.last, self.width = enabled, sys.stderr.isatty(), "", 0

    def show(self, text: str) -> None:
        if not self.enabled:
            return
        if self.tty:
            sys.stderr.write("\r" + text.ljust(self.width))
            self.width = len(text)
        elif _without_time(text) != _without_time(self.last):
            sys.stderr.write(text + "\n")
        sys.stderr.flush()
        self.last = text

    def close(self) -> None:
        if self.enabled and self.tty and self.last:
            sys.stderr.write("\n")


def _without_time(text: str) -> str:
    head, _, tail = text.partition(" s: ")
    return head.split(",")[0] + tail


# -- records and deliveries -------------------------------------------------------------------------------


@click.command()
@click.argument("integration")
@click.argument("connection_id")
@click.argument("model")
@click.option("--variant", default="base", show_default=True)
@click.option("--cursor", help="Only changes after this cursor (a record's _nango_metadata.cursor).")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10000))
@click.option("--filter", "action_filter", help="added, updated, deleted, or two joined by a comma.")
@JSON_OPTION
@click.pass_context
def records(ctx, integration, connection_id, model, variant, cursor, limit, action_filter, as_json):
    """One page of a model's records, oldest change first, and the cursor of the next page."""
    params = {"model": model, "variant": variant, "limit": limit, **({"cursor": cursor} if cursor else {}),
              **({"filter": action_filter} if action_filter else {})}  # fmt: skip
    page = api_of(ctx).get("/records", params=params, headers={"Connection-Id": connection_id, "Provider-Config-Key": integration})
    rows = [
        (r["id"], r["_nango_metadata"]["last_action"], r["_nango_metadata"]["last_modified_at"], _summary(r))
        for r in page["records"]
    ]
    emit(page, as_json, Table(("ID", "ACTION", "LAST MODIFIED", "RECORD"), rows, empty="no records")
         .render() + f"\nnext cursor: {page['next_cursor'] or '- (last page)'}")  # fmt: skip


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    """The first few fields of a record, for a table cell."""
    fields = {k: v for k, v in record.items() if k not in ("id", "_nango_metadata") and v not in (None, "", [], {})}
    return dict(list(fields.items())[:3])


@click.group()
def deliveries() -> None:
    """The webhooks sent to the app: list them, retry one that gave up."""


@deliveries.command("list")
@click.option("--status", type=click.Choice(["pending", "delivered", "failed"]), help="Only deliveries in this state.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@JSON_OPTION
@click.pass_context
def deliveries_list(ctx, status, limit, as_json):
    """Webhook deliveries, the newest first."""
    params = {"limit": limit, **({"status": status} if status else {})}
    found = api_of(ctx).get("/webhook-deliveries", params=params)["deliveries"]
    rows = [
        (d["delivery_id"], d["status"], d["attempts"], d["created_at"], _webhook_subject(d["body"]), d["last_error"])
        for d in found
    ]
    emit(found, as_json, Table(("DELIVERY", "STATUS", "ATTEMPTS", "CREATED", "WEBHOOK", "LAST ERROR"), rows, empty="no deliveries"))


def _webhook_subject(body: Any) -> str:
    if not isinstance(body, dict):
        return "-"
    what = f"{body.get('providerConfigKey')}/{body.get('connectionId')} {body.get('syncName')} {body.get('syncVariant')} {body.get('model')}"
    if body.get("success") is False:
        return f"{what} FAILED"
    counts = body.get("responseResults") or {}
    return f"{what} +{counts.get('added', 0)} ~{counts.get('updated', 0)} -{counts.get('deleted', 0)}"


@deliveries.command("retry")
@click.argument("delivery_id")
@JSON_OPTION
@click.pass_context
def deliveries_retry(ctx, delivery_id, as_json):
    """Send a failed (or pending) delivery again now, with a fresh series of attempts."""
    result = api_of(ctx).post(f"/webhook-deliveries/{delivery_id}/retry")
    emit(result, as_json, f"delivery {delivery_id} is due now; the webhook sensor sends it within seconds")


COMMANDS = [connections, metadata, variants, trigger, status, records, deliveries]
