"""The broker down (docs/deploy.md, Faults), on RabbitMQ and on Redis. When the daemon launches a run: the launch
fails, the scheduler retries the partition 15 s later, and once the broker is back the retry syncs every record: a
failed launch, not a lost run. While a run executes: it finishes, and run monitoring's pings of the workers fail
rather than declare its worker lost. The outage is real: the deployment's processes reach the broker through a TCP
relay that is closed (connections refused, open ones cut) and opened again; the workers reconnect by themselves."""

from __future__ import annotations

import re
import time

import pytest
from dagster import DagsterRunStatus

from sync_pipeline.vocabulary import WORKER_LOST_TAG
from sync_pipeline_tests.fakes.relay import tcp_relay
from sync_pipeline_tests.fakes.server import ServedApp
from sync_pipeline_tests.scaleout.deployment import scaleout_deployment
from sync_pipeline_tests.scaleout.test_celery_workers import slack_api

pytestmark = pytest.mark.postgres_only

# Each broker behind the relay: the port it listens on, and its URL for a relay at {port}.
BROKERS = {
    "rabbitmq": (5672, "amqp://guest:guest@127.0.0.1:{port}//"),
    "redis": (6379, "redis://127.0.0.1:{port}/0"),
}


@pytest.mark.parametrize("broker", BROKERS)
def test_a_run_launched_while_the_broker_is_down_fails_its_launch_and_its_retry_syncs_everything(broker, tmp_path):
    broker_port, broker_url = BROKERS[broker]
    slack = slack_api(20)
    with (
        ServedApp(slack) as served,
        tcp_relay("127.0.0.1", broker_port) as relay,
        scaleout_deployment(broker_url.format(port=relay.port), tmp_path / "home") as deployment,
    ):
        slack.url = served.url
        relay.close()  # the broker goes down
        deployment.create_slack_connection("outage", slack)  # its first run is due at once

        failure = deployment.wait_for_webhook("outage", success=False, timeout=60)
        relay.open()  # the broker is back
        success = deployment.wait_for_webhook("outage", success=True, timeout=90)
        time.sleep(6)  # a second success would come by the notification sensor's next tick

        hooks = [hook for hook in deployment.webhooks() if hook["connectionId"] == "outage"]
        runs = deployment.run_records()
        status = deployment.status("outage")

    # The app hears of the failed launch (the first sync of the connection failed), then of the retry's success.
    assert [hook["success"] for hook in hooks] == [False, True], hooks
    assert failure["syncType"] == "INITIAL"
    # In the broker client's words: "[Errno 111] Connection refused" (amqp), "Error 111 connecting to ..." (redis).
    assert re.search(r"the run could not be launched: .*111.* Connection refused", failure["error"]["description"])
    assert success["syncType"] == "INITIAL" and success["responseResults"] == {"added": 20, "updated": 0, "deleted": 0}
    assert status["status"] == "SUCCESS" and status["recordCount"] == {"SlackUser": 20}
    # Two runs, none left in flight: the launch that failed (it never started) and its retry.
    assert [run.dagster_run.status for run in runs] == [DagsterRunStatus.FAILURE, DagsterRunStatus.SUCCESS]
    failed, retry = runs
    assert failed.start_time is None and retry.start_time is not None
    # Retried after NEVER_STARTED_BACKOFF's 15 s (and at most a scheduler tick of 5 s more), not the minute a run
    # that did work waits.
    waited = retry.create_timestamp.timestamp() - failed.end_time
    assert 15 <= waited < 30, waited


@pytest.mark.parametrize("broker", BROKERS)
def test_a_run_executing_while_the_broker_is_down_for_thirty_seconds_finishes_and_the_workers_take_new_runs(
    broker, tmp_path
):
    broker_port, broker_url = BROKERS[broker]
    # Twenty pages of one user, 2.5 s each: the run executes for ~50 s, through the whole outage.
    slow, fast = slack_api(20, max_page=1, page_delay=2.5), slack_api(20)
    with (
        ServedApp(slow) as served_slow,
        ServedApp(fast) as served_fast,
        tcp_relay("127.0.0.1", broker_port) as relay,
        scaleout_deployment(broker_url.format(port=relay.port), tmp_path / "home") as deployment,
    ):
        slow.url, fast.url = served_slow.url, served_fast.url
        deployment.create_slack_connection("during", slow)
        deployment.wait_for_requests(slow, 2)  # a worker executes the run
        relay.close()  # the broker goes down for everyone: the daemon's pings and the workers' consumers
        time.sleep(30)  # run monitoring (every 10 s) checks the run at least twice meanwhile
        pages_during_outage = len(slow.requests)
        relay.open()  # the broker is back

        success = deployment.wait_for_webhook("during", success=True, timeout=60)
        deployment.create_slack_connection("after", fast)  # taken by a worker that reconnected
        after = deployment.wait_for_webhook("after", success=True, timeout=60)
        time.sleep(6)  # a second webhook would come by the notification sensor's next tick

        hooks = [hook for hook in deployment.webhooks() if hook["connectionId"] == "during"]
        runs = deployment.run_records()
        status = deployment.status("during")
        daemon = deployment.others[0].output()

    assert pages_during_outage < 20, "the run ended before the broker came back: it did not run through the outage"
    # One webhook for the run that executed through the outage: its success, no failure (not declared lost).
    # Run monitoring checked the run during the outage: the ping of the workers could not reach the broker and
    # raised, which the daemon logs (an error in checking, not a lost worker).
    [run_id] = [run.dagster_run.run_id for run in runs[:1]]
    assert daemon.count(f"Hit error while monitoring run {run_id}") >= 2, daemon[-5000:]
    assert [hook["success"] for hook in hooks] == [True], hooks
    assert success["responseResults"] == {"added": 20, "updated": 0, "deleted": 0}
    assert status["status"] == "SUCCESS" and status["recordCount"] == {"SlackUser": 20}
    # One run for it in Dagster, successful and not tagged worker-lost; the next connection's run after it.
    assert [run.dagster_run.status for run in runs] == [DagsterRunStatus.SUCCESS, DagsterRunStatus.SUCCESS], runs
    assert all(WORKER_LOST_TAG not in run.dagster_run.tags for run in runs), [run.dagster_run.tags for run in runs]
    assert after["responseResults"] == {"added": 20, "updated": 0, "deleted": 0}
