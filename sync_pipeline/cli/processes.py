"""The processes of a deployment on one machine: its Dagster home, and the UI, daemon and API started and stopped together."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import click

from sync_pipeline.settings import dagster_home, normalize_database_url, render_instance_yaml

REPOSITORY = Path(__file__).resolve().parents[2]
STOP_SECONDS = 2.0  # Ctrl-C: children get this long to stop on SIGTERM, then SIGKILL (all stopped within 5 s)


class DeploymentNotFound(click.ClickException):
    """A command that needs an existing deployment found none: it says where it looked instead of creating one."""

    exit_code = 3


def prepare_environment(home: Path | None = None) -> dict[str, str]:
    """Make the Dagster home (with its dagster.yaml and secret key) and the settings every process shares.

    Only `dev` and `demo` call this: they create a deployment. Other commands use `find_deployment`.
    """
    home = (home or dagster_home()).resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    url = os.environ.get("SYNC_PIPELINE_DATABASE_URL")
    if url:
        os.environ["SYNC_PIPELINE_DATABASE_URL"] = normalize_database_url(url)
    url = url and normalize_database_url(url)
    (home / "dagster.yaml").write_text(scaleout_yaml(render_instance_yaml(instance_template().read_text(), url), url))
    if not os.environ.get("SYNC_PIPELINE_SECRET_KEY"):
        key_file = home / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_urlsafe(32))
            key_file.chmod(0o600)
        os.environ["SYNC_PIPELINE_SECRET_KEY"] = key_file.read_text().strip()
    initialize_storage()
    return dict(os.environ)


def configured_broker() -> str | None:
    """SYNC_PIPELINE_BROKER_URL when set (scale-out mode), checked; a clear error for one we cannot use."""
    from sync_pipeline.scaleout import ScaleOutError, broker_url

    try:
        return broker_url()
    except ScaleOutError as error:
        raise click.ClickException(str(error)) from None


def scaleout_yaml(instance_yaml: str, url: str | None) -> str:
    """The instance's dagster.yaml for scale-out mode when SYNC_PIPELINE_BROKER_URL is set; a clear error when
    it cannot work (a broker that is not amqp:// or redis://, storage on SQLite, a bad setting)."""
    from sync_pipeline.scaleout import ScaleOutError, render_scaleout_yaml

    try:
        return render_scaleout_yaml(instance_yaml, url)
    except ScaleOutError as error:
        raise click.ClickException(str(error)) from None


def initialize_storage() -> str:
    """Create or migrate the sync_pipeline schema and Dagster's storage once, under a lock, before the processes
    that share them start (three processes migrating a fresh SQLite home at once collide). Returns the revision."""
    from sync_pipeline.orchestration.storage import prepare_storage
    from sync_pipeline.settings import database_url

    return prepare_storage(database_url(), dagster_home())


def instance_template() -> Path:
    """The dagster.yaml to copy into the home: the current folder's, else the repository's."""
    for candidate in (Path.cwd() / "dagster.yaml", REPOSITORY / "dagster.yaml"):
        if candidate.exists():
            return candidate
    raise DeploymentNotFound("no dagster.yaml to start from: run this from a clone of the sync_pipeline repository")


def find_deployment() -> Path:
    """The Dagster home of an existing deployment ($DAGSTER_HOME, else ./.dagster_home), never created here."""
    home = dagster_home()
    if not (home / "dagster.yaml").exists():
        where = "DAGSTER_HOME" if os.environ.get("DAGSTER_HOME") else "the current folder"
        raise DeploymentNotFound(
            f"no sync_pipeline deployment at {home} (from {where}): run `sync-pipeline dev` in the folder of your "
            "deployment first, run this command from that folder, or set DAGSTER_HOME to its Dagster home"
        )
    return home


def find_database_url() -> str:
    """The database of an existing deployment: SYNC_PIPELINE_DATABASE_URL, else the SQLite file of the Dagster home
    `find_deployment` finds. Never a new, empty one."""
    from sync_pipeline.settings import database_url

    if os.environ.get("SYNC_PIPELINE_DATABASE_URL"):
        return database_url()
    home = find_deployment()
    os.environ["DAGSTER_HOME"] = str(home)
    if not (home / "sync_pipeline.db").exists():
        raise DeploymentNotFound(f"the deployment at {home} has no database yet (sync_pipeline.db): start it once with `sync-pipeline dev`")
    return database_url()


def code_target() -> list[str]:
    """Where Dagster finds the code: the current folder's workspace.yaml, else the sync_pipeline module."""
    workspace = Path.cwd() / "workspace.yaml"
    return ["-w", str(workspace)] if workspace.exists() else ["-m", "sync_pipeline.definitions"]


PRODUCT_ONLY = ["-m", "sync_pipeline.definitions"]  # the product's own code location, without users' projects


def product_commands(
    ui_port: int, api_port: int, host: str = "127.0.0.1", target: list[str] | None = None, workers: int = 0
) -> dict[str, list[str]]:
    """The three processes of `dev`: Dagster's UI and daemon (sensors, run queue) and the HTTP API, and in
    scale-out mode `workers` Celery workers.

    Started directly rather than through `dagster dev` (superseded by `dg dev`, slower to stop, and
    warning about a dagster.yaml in the current folder that we copy into the home ourselves).
    """
    target = target or code_target()
    python = sys.executable
    return {
        "ui": [python, "-m", "dagster_webserver", "-h", host, "-p", str(ui_port), *target],
        "daemon": [python, "-m", "sync_pipeline.cli.daemon", "run", *target],
        "api": [python, "-m", "sync_pipeline.cli", "serve", "--host", host, "--port", str(api_port)],
        **{f"worker{index}": [python, "-m", "sync_pipeline.cli", "worker", "--name", f"worker{index}"] for index in range(1, workers + 1)},
    }


@dataclass
class Product:
    """Running children, each in its own process group (so Ctrl-C reaches us alone and we stop them)."""

    children: dict[str, subprocess.Popen] = field(default_factory=dict)

    @classmethod
    def start(cls, commands: dict[str, list[str]], env: dict[str, str], **popen) -> "Product":
        return cls({name: subprocess.Popen(command, env=env, start_new_session=True, **popen) for name, command in commands.items()})

    def exited(self) -> str | None:
        """The name of a child that exited, if one did."""
        return next((name for name, child in self.children.items() if child.poll() is not None), None)

    def stop(self, grace: float = STOP_SECONDS) -> None:
        """SIGTERM every group at once, then SIGKILL what is left after `grace` seconds."""
        for child in self.children.values():
            _signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in self.children.values():
            try:
                child.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for child in self.children.values():
            _signal_group(child, signal.SIGKILL)  # also the code servers and run workers they started
            try:
                child.wait(timeout=2)
            except subprocess.TimeoutExpired:  # pragma: no cover - a process that survives SIGKILL
                pass


def _signal_group(child: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(child.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_for_stop_signal(product: Product) -> str:
    """Block until Ctrl-C, SIGTERM or a child's exit; says which."""
    reason: list[str] = []

    def stop(signum, _frame) -> None:
        reason.append(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not reason:
            exited = product.exited()
            if exited:
                return f"{exited} exited with code {product.children[exited].returncode}"
            time.sleep(0.2)
        return reason[0]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def wait_until_answering(*urls: str, timeout: float) -> bool:
    """Whether each URL answered 200 (polled in turn) within `timeout` seconds in all."""
    import httpx

    deadline = time.monotonic() + timeout
    for url in urls:
        while True:
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                return False
            time.sleep(0.3)
    return True


def redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def exit_now(code: int = 0) -> None:
    """Leave at once once every child is stopped: the interpreter's own teardown after importing Dagster (its
    gRPC runtime) takes seconds more, in C, and Ctrl-C must finish within 5 s."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
