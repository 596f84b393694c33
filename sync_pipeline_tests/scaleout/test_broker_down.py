"""The broker down when the daemon launches a run (docs/deploy.md, Faults): the launch fails, the scheduler retries
the partition 15 s later, and once the broker is back the retry syncs every record: a failed launch, not a lost
run. The outage is real: the deployment's processes reach RabbitMQ through a TCP relay that is closed (connections
refused, open ones cut) and opened again; the workers reconnect by themselves."""

from __future__ import annotations

import time

from dagster import DagsterRunStatus

from sync_pipeline_tests.fakes.relay import tcp_relay
from sync_pipeline_tests.fakes.server import ServedApp
from sync_pipeline_tests.scaleout.deployment import scaleout_deployment
from sync_pipeline_tests.scaleout.test_celery_workers import slack_api


def test_a_run_launched_while_the_broker_is_down_fails_its_launch_and_its_retry_syncs_everything(tmp_path):
    slack = slack_api(20)
    with (
        ServedApp(slack) as served,
        tcp_relay("127.0.0.1", 5672) as relay,
        scaleout_deployment(f"amqp://guest:guest@127.0.0.1:{relay.port}//", tmp_path / "home") as deployment,
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
    assert "the run could not be launched: [Errno 111] Connection refused" in failure["error"]["description"], failure
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
