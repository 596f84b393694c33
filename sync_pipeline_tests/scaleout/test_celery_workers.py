"""Scale-out on real PostgreSQL and a real broker: the daemon launches runs through dagster-celery's
CeleryRunLauncher onto two `sync-pipeline worker` processes. Every connection syncs with exact counts and one
webhook; a worker SIGKILLed half way through a run loses nothing: the run is failed by run monitoring, run again
at once on the other worker, resumes from its checkpoint, and ends with exactly the provider's records."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from sync_pipeline_tests.fakes.server import ServedApp
from sync_pipeline_tests.fakes.slack import SlackApi
from sync_pipeline_tests.scaleout.deployment import kill_group, scaleout_deployment

pytestmark = pytest.mark.postgres_only

RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"


def slack_api(users: int, **settings) -> SlackApi:
    api = SlackApi()
    for index in range(users):
        api.put(f"U{index:03d}", f"Member{index}")
    for name, value in settings.items():
        setattr(api, name, value)
    return api


@pytest.fixture(scope="module")
def slack():
    api = slack_api(20)
    with ServedApp(api) as served:
        api.url = served.url
        yield api


@pytest.fixture(scope="module")
def rabbitmq_deployment(tmp_path_factory):
    with scaleout_deployment(RABBITMQ, tmp_path_factory.mktemp("scaleout_home")) as deployment:
        yield deployment


def test_thirty_connections_sync_on_two_workers_with_exact_counts_and_one_webhook_each(rabbitmq_deployment, slack):
    deployment = rabbitmq_deployment
    connection_ids = {f"team{index:02d}" for index in range(30)}

    for connection_id in sorted(connection_ids):
        deployment.create_slack_connection(connection_id, slack)
    webhooks = deployment.wait_for_webhooks(connection_ids, timeout=150)

    assert Counter(hook["connectionId"] for hook in webhooks) == {connection_id: 1 for connection_id in connection_ids}
    assert all(hook["responseResults"] == {"added": 20, "updated": 0, "deleted": 0} for hook in webhooks)
    assert all(hook["syncType"] == "INITIAL" and hook["success"] for hook in webhooks)
    for connection_id in connection_ids:
        assert deployment.status(connection_id)["recordCount"] == {"SlackUser": 20}
    # Both workers took runs: the queue is shared, not pinned to one.
    assert all(_runs_received(worker) > 0 for worker in deployment.workers.values()), deployment.logs()


def test_a_worker_killed_mid_run_loses_nothing_and_counts_nothing_twice(rabbitmq_deployment):
    deployment = rabbitmq_deployment
    slow = slack_api(20, max_page=2, page_delay=0.6)  # ten pages of two users, each saved as a checkpoint
    with ServedApp(slow) as served:
        slow.url = served.url
        received = {name: _runs_received(worker) for name, worker in deployment.workers.items()}
        deployment.create_slack_connection("slowco", slow)

        # Half way: a few pages read and checkpointed by whichever worker took the run.
        deployment.wait_for_requests(slow, 4)
        took = [name for name, worker in deployment.workers.items() if _runs_received(worker) > received[name]]
        assert len(took) == 1, (received, {n: _runs_received(w) for n, w in deployment.workers.items()}, deployment.logs(80))
        [victim] = took
        pages_before_kill = len(slow.requests)
        kill_group(deployment.workers.pop(victim))

        success = deployment.wait_for_webhook("slowco", success=True, timeout=120)
        time.sleep(6)  # a second one would come by the notification sensor's next tick

    slowco = [hook for hook in deployment.webhooks() if hook["connectionId"] == "slowco"]
    # The killed attempt is reported as the failed run it was, then the retry's success: one, counting each
    # record once across both attempts.
    assert [hook["success"] for hook in slowco] == [False, True], slowco
    assert success["responseResults"] == {"added": 20, "updated": 0, "deleted": 0}
    status = deployment.status("slowco")
    assert status["status"] == "SUCCESS" and status["recordCount"] == {"SlackUser": 20}
    # It resumed from its checkpoint: the pages read before the kill were not all read again.
    assert len(slow.requests) < pages_before_kill + 10


def _runs_received(worker) -> int:
    worker.drain()
    return sum("execute_job" in line and "received" in line for line in worker.lines)
