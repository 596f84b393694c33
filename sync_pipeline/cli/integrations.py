"""`sync-pipeline integration-credentials`: an integration's OAuth client credentials, written to the database of an
existing deployment (the same as PATCH /integrations/<integration>)."""

from __future__ import annotations

import click

from sync_pipeline.cli.processes import find_database_url


@click.command("integration-credentials")
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
    store_for(find_database_url()).integration_credentials.put(integration, credentials.model_dump(exclude_none=True))
    click.echo(f"client credentials of {integration} saved")
