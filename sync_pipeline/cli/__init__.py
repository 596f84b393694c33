"""The `sync-pipeline` command: `dev` and `demo` start a deployment, `serve` the API, `daemon` Dagster's daemon; the
rest operate one (over its HTTP API, except `integration-credentials`, `migrate` and `rotate-key`, which work on
its database)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from sync_pipeline.api.service import package_version
from sync_pipeline.cli.client import DEFAULT_URL, URL_VARIABLE, Api
from sync_pipeline.cli.integrations import integration_credentials
from sync_pipeline.cli.maintenance import daemon, migrate, rotate_key
from sync_pipeline.cli.operator import COMMANDS
from sync_pipeline.cli.worker import worker
from sync_pipeline.cli.processes import (
    Product,
    configured_broker,
    exit_now,
    find_deployment,
    initialize_storage,
    prepare_environment,
    product_commands,
    redacted,
    wait_for_stop_signal,
)
from sync_pipeline.scaleout.instance import BROKER_VARIABLE
from sync_pipeline.settings import database_url


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_version(), "--version", prog_name="sync-pipeline")
@click.option("--url", envvar=URL_VARIABLE, default=DEFAULT_URL, show_default=True,
              help=f"The HTTP API the operator commands talk to (or {URL_VARIABLE}).")
@click.option("--key", envvar="SYNC_PIPELINE_SECRET_KEY", default=None, show_envvar=True,
              help="The API's secret key (default: .dagster_home/secret_key of the current folder).")
@click.pass_context
def main(ctx: click.Context, url: str, key: str | None) -> None:
    """sync_pipeline: keep copies of your customers' SaaS records and tell your app what changed."""
    ctx.obj = Api(url.rstrip("/"), key)


for command in [*COMMANDS, integration_credentials, migrate, daemon, rotate_key, worker]:
    main.add_command(command)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=3003, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Serve the HTTP API of an existing deployment (SYNC_PIPELINE_SECRET_KEY, the daemon's DAGSTER_HOME)."""
    import uvicorn

    find_deployment()  # never create an empty deployment by starting from the wrong folder
    initialize_storage()  # before the app opens them: a daemon starting at the same moment takes its turn
    from sync_pipeline.api import app_from_env

    uvicorn.run(app_from_env(), host=host, port=port, log_level="info")


@main.command()
@click.option("--api-port", default=3003, show_default=True, type=int)
@click.option("--ui-port", default=3000, show_default=True, type=int)
@click.option("--host", default="127.0.0.1", show_default=True, help="Where the UI and the API listen.")
@click.option("--workers", default=0, show_default=True, type=click.IntRange(min=0),
              help="Celery workers to start too (scale-out mode: needs SYNC_PIPELINE_BROKER_URL and PostgreSQL).")
def dev(api_port: int, ui_port: int, host: str, workers: int) -> None:
    """Start everything on this machine: Dagster's UI and daemon (sensors, run queue) and the API. Ctrl-C stops it."""
    broker = configured_broker()
    if workers and not broker:
        raise click.UsageError(f"--workers needs a broker: set {BROKER_VARIABLE} (amqp://... or redis://...)")
    env = prepare_environment()
    home = Path(env["DAGSTER_HOME"])
    click.echo(f"Dagster home: {home}")
    click.echo(f"Database:     {redacted(env.get('SYNC_PIPELINE_DATABASE_URL') or database_url())}")
    click.echo(f"Dagster UI:   http://{host}:{ui_port}")
    click.echo(f"HTTP API:     http://{host}:{api_port}  (secret key: {home / 'secret_key'} unless set)")
    if workers:
        click.echo(f"Workers:      {workers} Celery workers on {redacted(broker)}")
    sys.stdout.flush()
    product = Product.start(product_commands(ui_port, api_port, host, workers=workers), env)
    reason = wait_for_stop_signal(product)
    click.echo(f"stopping ({reason})...")
    product.stop()
    click.echo("stopped")
    exit_now(0 if reason in ("SIGINT", "SIGTERM") else 1)


@main.command()
@click.option("--ui-port", default=3000, show_default=True, type=int)
@click.option("--api-port", default=3003, show_default=True, type=int)
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The demo's Dagster home (default: a new temporary folder).")
@click.option("--exit", "exit_after", is_flag=True, help="Stop everything after the walkthrough instead of leaving the UI running.")
def demo(ui_port: int, api_port: int, home: Path | None, exit_after: bool) -> None:
    """See it work without any account: a demo provider (Slack, Salesforce, GitHub), two sync rounds, webhooks, records."""
    from sync_pipeline.demo.walkthrough import run_demo

    run_demo(ui_port=ui_port, api_port=api_port, home=home, keep=not exit_after)


__all__ = ["main"]
