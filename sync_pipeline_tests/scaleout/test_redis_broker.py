"""Scale-out with Redis as the broker (the RabbitMQ tests are in test_celery_workers.py): a few connections sync on
two workers with exact counts and one webhook each. In a module of its own, so the RabbitMQ deployment is stopped
before this one starts."""

from __future__ import annotations

from collections import Counter

import pytest

from sync_pipeline_tests.fakes.server import ServedApp
from sync_pipeline_tests.scaleout.deployment import scaleout_deployment
from sync_pipeline_tests.scaleout.test_celery_workers import slack_api

pytestmark = pytest.mark.postgres_only

REDIS = "redis://127.0.0.1:6379/0"


def test_on_redis_connections_sync_on_two_workers(tmp_path):
    slack = slack_api(20)
    with ServedApp(slack) as served, scaleout_deployment(REDIS, tmp_path / "home") as deployment:
        slack.url = served.url
        connection_ids = {f"redis{index}" for index in range(4)}
        for connection_id in sorted(connection_ids):
            deployment.create_slack_connection(connection_id, slack)

        webhooks = deployment.wait_for_webhooks(connection_ids, timeout=120)

        assert Counter(hook["connectionId"] for hook in webhooks) == {connection_id: 1 for connection_id in connection_ids}
        assert all(hook["responseResults"] == {"added": 20, "updated": 0, "deleted": 0} for hook in webhooks)
