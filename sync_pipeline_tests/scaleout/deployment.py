"""A scale-out deployment as an operator runs it: `sync-pipeline migrate`, `daemon`, `serve` and `worker` processes
on one PostgreSQL database and one broker, each a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from dagster import DagsterInstance, RunRecord
from dagster._core.test_utils import environ

from sync_pipeline.cli.processes import wait_until_answering
from sync_pipeline_tests.cli.processes import Command, free_port
from sync_pipeline_tests.conftest import server_database
from sync_pipeline_tests.fakes.receiver import WebhookReceiver, served_receiver

SECRET_KEY = "scaleout-test-key"


class Deployment:
    def __init__(self, env: dict[str, str], api: str, receiver: WebhookReceiver) -> None:
        self.env, self.api, self.receiver = env, api, receiver
        self.workers: dict[str, Command] = {}
        self.others: list[Command] = []

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.api, headers={"Authorization": f"Bearer {SECRET_KEY}"}, timeout=30)

    def start_workers(self, count: int, concurrency: int = 2) -> None:
        """Started together; returns once each consumes the queue (Celery prints "<name> ready.")."""
        for index in range(1, count + 1):
            name = f"w{index}"
            self.workers[name] = Command("worker", "--concurrency", str(concurrency), "--name", name, env=self.env)
        for worker in self.workers.values():
            worker.wait_for_line("ready.", timeout=120)

    def create_slack_connection(self, connection_id: str, slack) -> None:
        with self.client() as client:
            response = client.post("/connections", json={
                "provider_config_key": "slack", "connection_id": connection_id,
                "credentials": {"type": "OAUTH2", "access_token": slack.token},
                "connection_config": {"base_url": f"{slack.url}/api"},
            })  # fmt: skip
        assert response.status_code == 200, response.text

    def status(self, connection_id: str) -> dict:
        with self.client() as client:
            params = {"provider_config_key": "slack", "connection_id": connection_id, "syncs": "users"}
            response = client.get("/sync/status", params=params)
        assert response.status_code == 200, response.text
        return response.json()["syncs"][0]

    def webhooks(self) -> list[dict]:
        return [json.loads(body) for body in self.receiver.accepted]

    def wait_for_webhooks(self, connection_ids: set[str], timeout: float) -> list[dict]:
        """Once every connection has its webhook: all webhooks received (waiting a little for strays)."""
        deadline = time.monotonic() + timeout
        while not connection_ids <= {hook["connectionId"] for hook in self.webhooks()}:
            if time.monotonic() > deadline:
                missing = connection_ids - {hook["connectionId"] for hook in self.webhooks()}
                raise AssertionError(f"no webhook within {timeout:.0f} s for {sorted(missing)}:\n{self.logs()}")
            time.sleep(0.5)
        return self.webhooks()

    def wait_for_webhook(self, connection_id: str, success: bool, timeout: float) -> dict:
        """The first webhook for `connection_id` whose `success` is `success`."""
        deadline = time.monotonic() + timeout
        while not (hooks := [h for h in self.webhooks() if (h["connectionId"], h["success"]) == (connection_id, success)]):
            if time.monotonic() > deadline:
                raise AssertionError(f"no webhook success={success} for {connection_id} in {timeout:.0f} s:\n{self.logs()}")
            time.sleep(0.5)
        return hooks[0]

    def wait_for_requests(self, provider, count: int, timeout: float = 90) -> None:
        """Until the fake `provider` has answered `count` requests: a worker is executing the run."""
        deadline = time.monotonic() + timeout
        while len(provider.requests) < count:
            assert time.monotonic() < deadline, f"the run did not start:\n{self.logs()}"
            time.sleep(0.2)

    def run_records(self) -> list[RunRecord]:
        """Dagster's runs of the deployment, oldest first: what its UI's Runs page lists."""
        with environ({"SYNC_PIPELINE_DATABASE_URL": self.env["SYNC_PIPELINE_DATABASE_URL"]}):
            with DagsterInstance.from_config(self.env["DAGSTER_HOME"]) as instance:
                return list(reversed(instance.get_run_records()))

    def logs(self, tail: int = 40) -> str:
        parts = []
        for name, command in [*self.workers.items(), *((f"process {i}", c) for i, c in enumerate(self.others))]:
            parts.append(f"--- {name}:\n" + "\n".join(command.output().splitlines()[-tail:]))
        return "\n".join(parts)

    def stop(self) -> None:
        for command in [*self.workers.values(), *self.others]:
            command.kill()


@contextmanager
def scaleout_deployment(broker: str, home: Path, workers: int = 2) -> Iterator[Deployment]:
    """daemon + API + `workers` workers on a fresh PostgreSQL database and a queue of this test's own on `broker`
    (other tests and deployments may share the broker)."""
    with server_database("sp_scaleout") as url, served_receiver() as receiver:
        api_port = free_port()
        env = {
            "DAGSTER_HOME": str(home), "SYNC_PIPELINE_DATABASE_URL": url, "SYNC_PIPELINE_BROKER_URL": broker,
            "SYNC_PIPELINE_QUEUE": f"sp_test_{uuid.uuid4().hex[:8]}", "SYNC_PIPELINE_SECRET_KEY": SECRET_KEY,
            "SYNC_PIPELINE_WEBHOOK_URL": receiver.url, "SYNC_PIPELINE_ALLOW_PRIVATE_WEBHOOK_URLS": "true",
        }  # fmt: skip
        migrate = Command("migrate", env=env)
        assert migrate.process.wait(timeout=120) == 0, migrate.output()
        deployment = Deployment(env, f"http://127.0.0.1:{api_port}", receiver)
        try:
            deployment.others = [
                Command("daemon", "-m", "sync_pipeline.definitions", env=env),
                Command("serve", "--port", str(api_port), env=env),
            ]
            deployment.start_workers(workers)
            assert wait_until_answering(f"{deployment.api}/health", timeout=120), deployment.logs()
            yield deployment
        finally:
            deployment.stop()


def kill_group(command: Command) -> None:
    """SIGKILL a worker as a lost machine would: its main process and its pool processes at once."""
    os.killpg(command.process.pid, signal.SIGKILL)
    command.process.wait(timeout=10)
