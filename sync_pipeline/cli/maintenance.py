"""Commands on a deployment's storage itself: `migrate` (schema and Dagster's storage), `daemon` (after migrating),
`rotate-key` (re-encrypt stored secrets)."""

from __future__ import annotations

import os
import sys

import click

from sync_pipeline.cli.processes import find_database_url, prepare_environment, redacted
from sync_pipeline.settings import database_url


@click.command()
def migrate() -> None:
    """Create or upgrade the sync_pipeline database and Dagster's storage (each process also does on start)."""
    from sync_pipeline.store import head_revision

    env = prepare_environment()  # migrates both, under a lock
    revision = head_revision()
    click.echo(f"sync_pipeline database {redacted(env.get('SYNC_PIPELINE_DATABASE_URL') or database_url())}: "
               f"schema at revision {revision}")
    click.echo(f"Dagster storage in {env['DAGSTER_HOME']}: ready")


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("daemon_args", nargs=-1, type=click.UNPROCESSED)
def daemon(daemon_args: tuple[str, ...]) -> None:
    """Run `dagster-daemon run [DAEMON_ARGS]` (quiet sensor ticks) once the storage is ready (e.g. `daemon -w workspace.yaml`)."""
    prepare_environment()
    os.execv(sys.executable, [sys.executable, "-m", "sync_pipeline.cli.daemon", "run", *daemon_args])


@click.command(name="rotate-key")
def rotate_key() -> None:
    """Encrypt every stored secret again with the first key of SYNC_PIPELINE_ENCRYPTION_KEY.

    Rotate a key by setting SYNC_PIPELINE_ENCRYPTION_KEY=<new key>,<old key> everywhere, running this, and
    then dropping the old key. Secrets stored in plain text get encrypted. Exits 1 if some cannot be read.
    """
    from sync_pipeline.store import ENCRYPTION_KEY_VARIABLE, EncryptionKeyError, store_for

    if not os.environ.get(ENCRYPTION_KEY_VARIABLE, "").strip():
        raise click.ClickException(f"{ENCRYPTION_KEY_VARIABLE} is not set: there is no key to encrypt with")
    store = store_for(find_database_url())
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
