"""Scale-out's configuration as an operator meets it: without a broker nothing changes; a broker the workers
cannot share storage through (SQLite) or cannot use is refused with a message that says what to set."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from sync_pipeline.cli import main
from sync_pipeline.scaleout import render_scaleout_yaml
from sync_pipeline.settings import render_instance_yaml
from sync_pipeline_tests.conftest import REPO

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
    template = render_instance_yaml((REPO / "dagster.yaml").read_text(), POSTGRES)
    assert render_scaleout_yaml(template, POSTGRES) == template  # no broker: Dagster's default launcher, as shipped

    operator_env.setenv("SYNC_PIPELINE_BROKER_URL", "redis://:hunter2@cache.internal:6379/0")
    rendered = render_scaleout_yaml(template, POSTGRES)
    config = yaml.safe_load(rendered)

    assert config["run_launcher"]["class"] == "SyncPipelineCeleryRunLauncher"
    assert config["run_launcher"]["config"] == {"broker": {"env": "SYNC_PIPELINE_BROKER_URL"}, "default_queue": "sync_pipeline"}
    assert config["compute_logs"]["class"] == "NoOpComputeLogManager"  # no capture processes per run step
    # The run queue's slots for many small runs on workers, and an hour for a run waiting in the broker.
    assert config["concurrency"]["runs"]["max_concurrent_runs"] == 64
    assert config["run_monitoring"]["start_timeout_seconds"] == 3600
    assert config["run_monitoring"]["poll_interval_seconds"] == 10  # the rest of dagster.yaml as it is
    keys = [line.split(":")[0].strip() for line in rendered.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert keys.count("max_concurrent_runs") == 1 and keys.count("run_monitoring") == 1  # replaced, not repeated
    assert "hunter2" not in rendered  # the broker's password stays in the environment


def test_an_operator_sets_the_run_queues_slots_for_their_workers(operator_env):
    operator_env.setenv("SYNC_PIPELINE_BROKER_URL", "amqp://guest:guest@mq.internal:5672//")
    template = render_instance_yaml((REPO / "dagster.yaml").read_text(), POSTGRES)
    operator_env.setenv("SYNC_PIPELINE_MAX_CONCURRENT_RUNS", "200")

    assert yaml.safe_load(render_scaleout_yaml(template, POSTGRES))["concurrency"]["runs"]["max_concurrent_runs"] == 200


@pytest.mark.parametrize("value", ["0", "-3", "lots", "1.5"])
def test_slots_that_are_not_a_positive_whole_number_are_refused_naming_the_variable(operator_env, value):
    operator_env.setenv("SYNC_PIPELINE_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    operator_env.setenv("SYNC_PIPELINE_DATABASE_URL", POSTGRES)
    operator_env.setenv("SYNC_PIPELINE_MAX_CONCURRENT_RUNS", value)

    result = CliRunner().invoke(main, ["worker"])

    assert result.exit_code == 1
    assert "SYNC_PIPELINE_MAX_CONCURRENT_RUNS must be a whole number" in result.output and value in result.output
    assert "Traceback" not in result.output
