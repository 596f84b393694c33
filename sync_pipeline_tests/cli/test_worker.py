"""Scale-out's configuration as an operator meets it: without a broker nothing changes; a broker the workers
cannot share storage through (SQLite) or cannot use is refused with a message that says what to set."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from sync_pipeline.cli import main
from sync_pipeline.scaleout import render_scaleout_yaml

POSTGRES = "postgresql+psycopg2://sp:secret@db.internal:5432/sp"


@pytest.fixture
def operator_env(tmp_path, monkeypatch):
    """A shell in an empty folder: no database, no Dagster home, no broker."""
    monkeypatch.chdir(tmp_path)
    for name in ("SYNC_PIPELINE_DATABASE_URL", "SYNC_PIPELINE_BROKER_URL", "SYNC_PIPELINE_QUEUE", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    return monkeypatch


def test_a_worker_without_a_broker_says_what_to_set(operator_env):
    result = CliRunner().invoke(main, ["worker"])

    assert result.exit_code == 2
    assert "SYNC_PIPELINE_BROKER_URL" in result.output and "Traceback" not in result.output


def test_dev_with_workers_but_no_broker_says_what_to_set(operator_env):
    result = CliRunner().invoke(main, ["dev", "--workers", "2"])

    assert result.exit_code == 2
    assert "--workers needs a broker" in result.output and "SYNC_PIPELINE_BROKER_URL" in result.output


def test_a_broker_with_the_sqlite_database_is_refused_because_workers_share_storage(operator_env):
    operator_env.setenv("SYNC_PIPELINE_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")

    result = CliRunner().invoke(main, ["worker"])

    assert result.exit_code == 1
    assert "the database is SQLite" in result.output and "PostgreSQL" in result.output
    assert "SYNC_PIPELINE_DATABASE_URL=postgresql://" in result.output and "Traceback" not in result.output


def test_a_broker_url_that_is_neither_rabbitmq_nor_redis_is_refused(operator_env):
    operator_env.setenv("SYNC_PIPELINE_BROKER_URL", "sqs://queue.example")
    operator_env.setenv("SYNC_PIPELINE_DATABASE_URL", POSTGRES)

    result = CliRunner().invoke(main, ["worker"])

    assert result.exit_code == 1
    assert "RabbitMQ (amqp://" in result.output and "Redis (redis://" in result.output and "sqs://" in result.output


def test_the_instance_launches_runs_on_celery_only_with_a_broker(operator_env):
    assert render_scaleout_yaml(POSTGRES) == ""  # no broker: Dagster's default launcher, as shipped

    operator_env.setenv("SYNC_PIPELINE_BROKER_URL", "redis://:hunter2@cache.internal:6379/0")
    config = yaml.safe_load(render_scaleout_yaml(POSTGRES))

    assert config["run_launcher"]["class"] == "SyncPipelineCeleryRunLauncher"
    assert config["run_launcher"]["config"] == {"broker": {"env": "SYNC_PIPELINE_BROKER_URL"}, "default_queue": "sync_pipeline"}
    assert config["compute_logs"]["class"] == "NoOpComputeLogManager"  # no capture processes per run step
    assert "run_monitoring" not in config  # dagster.yaml's own block (every mode) also watches the workers
    assert "hunter2" not in render_scaleout_yaml(POSTGRES)  # the broker's password stays in the environment
