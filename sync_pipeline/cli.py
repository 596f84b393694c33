"""The `sync-pipeline` command: `dev` (Dagster and the API together), `serve` (the API), `daemon`, `migrate`,
`deliveries`, `integration-credentials` (an integration's OAuth client credentials), `rotate-key` (re-encrypt
stored secrets)."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from sync_pipeline.settings import dagster_home, database_url, normalize_database_url, render_instance_yaml

REPOSITORY = Path(__file__).resolve().parents[1]


@click.group()
def main() -> None:
    """sync_pipeline: keep copies of your customers' SaaS records and tell your app what changed."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=3003, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Serve the HTTP API (needs SYNC_PIPELINE_SECRET_KEY and the Dagster home of the daemon)."""
    import uvicorn

    os.environ.setdefault("DAGSTER_HOME", str(dagster_home()))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    _prepare_storage()

    from sync_pipeline.api import app_from_env

    uvicorn.run(app_from_env(), host=host, port=port, log_level="info")


@main.command()
@click.option("--api-port", default=3003, show_default=True, type=int)
@click.option("--ui-port", default=3000, show_default=True, type=int)
def dev(api_port: int, ui_port: int) -> None:
    """Start everything on this machine: Dagster's UI and daemon (sensors, run queue) and the API."""
    env = prepare_environment()
    home = Path(env["DAGSTER_HOME"])
    _prepare_storage()  # before the children: they would otherwise create a fresh home's tables at once
    click.echo(f"Dagster home: {home}")
    click.echo(f"Database:     {_redacted(env.get('SYNC_PIPELINE_DATABASE_URL') or database_url())}")
    click.echo(f"Dagster UI:   http://127.0.0.1:{ui_port}")
    click.echo(f"HTTP API:     http://127.0.0.1:{api_port}  (secret key: {home / 'secret_key'} unless set)")
    workspace = Path.cwd() / "workspace.yaml"
    dagster = [sys.executable, "-m", "dagster", "dev", "-p", str(ui_port)]
    if workspace.exists():
        dagster += ["-w", str(workspace)]
    else:
        dagster += ["-m", "sync_pipeline.definitions"]
    api = [sys.executable, "-m", "sync_pipeline.cli", "serve", "--port", str(api_port)]
    children = [subprocess.Popen(command, env=env, start_new_session=True) for command in (dagster, api)]
    _supervise(children)


@main.command()
def migrate() -> None:
    """Create or upgrade the sync_pipeline database and Dagster's storage (each process also does on start)."""
    env = prepare_environment()
    revision = _prepare_storage()
    click.echo(f"sync_pipeline database {_redacted(env.get('SYNC_PIPELINE_DATABASE_URL') or database_url())}: "
               f"schema at revision {revision}")
    click.echo(f"Dagster storage in {env['DAGSTER_HOME']}: ready")


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("daemon_args", nargs=-1, type=click.UNPROCESSED)
def daemon(daemon_args: tuple[str, ...]) -> None:
    """Run `dagster-daemon run [DAEMON_ARGS]` once the storage is ready (e.g. `daemon -w workspace.yaml`)."""
    prepare_environment()
    _prepare_storage()
    os.execv(sys.executable, [sys.executable, "-m", "dagster._daemon", "run", *daemon_args])


def _prepare_storage() -> str:
    from sync_pipeline.orchestration.storage import prepare_storage

    return prepare_storage(database_url(), dagster_home())


@main.command()
@click.option("--status", type=click.Choice(["pending", "delivered", "failed"]), default=None)
@click.option("--limit", default=50, show_default=True, type=int)
def deliveries(status: str | None, limit: int) -> None:
    """List webhook deliveries to the app (the newest first), e.g. those that failed for good."""
    from sync_pipeline.notifications.delivery import deliveries_table
    from sync_pipeline.store import store_for

    prepare_environment()
    click.echo(deliveries_table(store_for(database_url()).deliveries.list(status=status, limit=limit)))


@main.command("integration-credentials")
@click.argument("integration")
@click.option("--client-id", help="OAuth client id (Slack, Salesforce, ...).")
@click.option("--client-secret", help="OAuth client secret; asked for (hidden) when --client-id is given without it.")
@click.option("--app-id", help="GitHub App id.")
@click.option("--private-key-file", type=click.File("r"), help="GitHub App private key, PEM ('-' reads stdin).")
def integration_credentials(
    integration: str, client_id: str | None, client_secret: str | None, app_id: str | None, private_key_file
) -> None:
    """Set an integration's OAuth client credentials, stored encrypted (SYNC_PIPELINE_ENCRYPTION_KEY).

    Tokens of its connections are refreshed with them. Same as PATCH /integrations/<integration>.
    """
    from pydantic import ValidationError

    from sync_pipeline.api.integrations import AppClient, OAuthClient, client_type_mismatch
    from sync_pipeline.integrations import load_registry
    from sync_pipeline.store import store_for

    declared = load_registry().get(integration)
    if declared is None:
        raise click.BadParameter(f"there is no integration {integration!r}", param_hint="INTEGRATION")
    if bool(client_id) == bool(app_id):
        raise click.UsageError("give either --client-id (OAuth) or --app-id with --private-key-file (GitHub App)")
    mismatch = client_type_mismatch(declared, "OAUTH2" if client_id else "APP")
    if mismatch:
        raise click.UsageError(mismatch)
    try:
        if client_id:
            secret = client_secret or click.prompt("Client secret", hide_input=True)
            credentials = OAuthClient(type="OAUTH2", client_id=client_id, client_secret=secret)
        else:
            if private_key_file is None:
                raise click.UsageError("--app-id needs --private-key-file")
            credentials = AppClient(type="APP", app_id=app_id, private_key=private_key_file.read())
    except ValidationError as error:
        # Field and reason only: pydantic's own rendering would print the secret it was given.
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors(include_input=False))
        raise click.UsageError(problems) from None
    prepare_environment()
    store_for(database_url()).integration_credentials.put(integration, credentials.model_dump(exclude_none=True))
    click.echo(f"client credentials of {integration} saved")


@main.command(name="rotate-key")
def rotate_key() -> None:
    """Encrypt every stored secret again with the first key of SYNC_PIPELINE_ENCRYPTION_KEY.

    Rotate a key by setting SYNC_PIPELINE_ENCRYPTION_KEY=<new key>,<old key> everywhere, running this, and
    then dropping the old key. Secrets stored in plain text get encrypted. Exits 1 if some cannot be read.
    """
    from sync_pipeline.store import ENCRYPTION_KEY_VARIABLE, EncryptionKeyError, store_for

    prepare_environment()
    if not os.environ.get(ENCRYPTION_KEY_VARIABLE, "").strip():
        raise click.ClickException(f"{ENCRYPTION_KEY_VARIABLE} is not set: there is no key to encrypt with")
    store = store_for(database_url())
    try:
        report = store.connections.reencrypt()
        clients, unreadable_clients = store.integration_credentials.reencrypt()
    except EncryptionKeyError as error:
        raise click.ClickException(str(error)) from None
    click.echo(
        f"{report.reencrypted} connections and {clients} integrations' client credentials encrypted with the first "
        f"key of {ENCRYPTION_KEY_VARIABLE}"
    )
    unreadable = [f"{connection_id} ({integration})" for integration, connection_id in report.unreadable]
    unreadable += [f"client credentials of {integration}" for integration in unreadable_clients]
    if unreadable:
        raise click.ClickException(
            f"{len(unreadable)} left as they were: no configured key decrypts their secrets: {', '.join(unreadable)}"
        )


def prepare_environment() -> dict[str, str]:
    """Make the Dagster home (with its dagster.yaml) and the settings every process of `dev` shares."""
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    url = os.environ.get("SYNC_PIPELINE_DATABASE_URL")
    if url:
        os.environ["SYNC_PIPELINE_DATABASE_URL"] = normalize_database_url(url)
    template_path = Path.cwd() / "dagster.yaml"
    if not template_path.exists():
        template_path = REPOSITORY / "dagster.yaml"
    (home / "dagster.yaml").write_text(render_instance_yaml(template_path.read_text(), os.environ.get("SYNC_PIPELINE_DATABASE_URL")))
    if not os.environ.get("SYNC_PIPELINE_SECRET_KEY"):
        key_file = home / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_urlsafe(32))
            key_file.chmod(0o600)
        os.environ["SYNC_PIPELINE_SECRET_KEY"] = key_file.read_text().strip()
    return dict(os.environ)


def _supervise(children: list[subprocess.Popen]) -> None:
    """Wait until a child exits or we are told to stop, then stop every child's process group.

    `dagster dev` started in the background ignores SIGTERM/SIGINT, so we signal the groups ourselves.
    """
    stopping = False

    def stop(_signum, _frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.5)
    finally:
        for child in children:
            _stop_group(child)


def _stop_group(child: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        if child.poll() is not None:
            return
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        try:
            child.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    main()
