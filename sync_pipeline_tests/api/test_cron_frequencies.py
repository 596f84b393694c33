"""Frequencies as cron expressions (`"cron: 0 * * * *"`, UTC) besides `every N minutes`, in a sync's declaration
and through `PUT /sync/update-connection-frequency`: the scheduler runs the partition at the expression's ticks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from pydantic import BaseModel

from sync_pipeline.orchestration.scheduling import evaluate_schedule
from sync_pipeline.sdk import Integration, Registry, SyncContext
from sync_pipeline.sdk.frequency import InvalidFrequency
from sync_pipeline.store import from_iso, utcnow
from sync_pipeline_tests.api.conftest import assert_error, import_acme
from sync_pipeline_tests.declared import api_over, connect

KEY = {"provider_config_key": "acme", "connection_id": "conn-1"}

hourly = Integration("hourly", base_url="https://api.acme.invalid")


class HourlyThing(BaseModel):
    id: str


@hourly.sync(models=[HourlyThing], name="things", frequency="cron: 15 */6 * * *")
def things(ctx: SyncContext) -> None:
    """Nothing to save: only its schedule is looked at."""


registry = Registry.of(hourly)


@pytest.fixture
def hourly_api(instance, store) -> Iterator[httpx.Client]:
    with api_over(registry, instance, store) as client:
        yield client


def next_due(store, integration: str, sync: str) -> datetime:
    return from_iso(store.partitions.get(integration, sync, "conn-1::base").next_due_at)


def next_tick(now: datetime, minute: int, every_hours: int) -> datetime:
    """The next `minute` past an hour divisible by `every_hours` after `now` (what the cron expression says)."""
    candidate = now.replace(minute=minute, second=0, microsecond=0)
    while candidate <= now or candidate.hour % every_hours:
        candidate += timedelta(hours=1)
    return candidate


def test_a_sync_declared_with_a_cron_frequency_runs_at_its_ticks(hourly_api, acme, instance, store):
    connect(hourly_api, "hourly", acme)
    now = utcnow()

    [request] = evaluate_schedule(instance, store, registry, now).requests  # a new partition runs at once

    assert next_due(store, "hourly", "things") == next_tick(now, 15, 6)
    [status] = hourly_api.get("/sync/status", params={"syncs": "things", "provider_config_key": "hourly", "connection_id": "conn-1"}).json()["syncs"]
    assert status["frequency"] == "cron: 15 */6 * * *"


def test_a_connections_frequency_can_be_set_to_a_cron_expression_and_back(client, acme, harness, instance, store):
    import_acme(client, acme)
    body = {"sync_name": "contacts", **KEY}

    response = client.put("/sync/update-connection-frequency", json={**body, "frequency": "cron:  30 *  * * *"})

    assert response.json() == {"frequency": "cron: 30 * * * *"}
    now = utcnow()
    evaluate_schedule(instance, store, harness.registry, now)  # due at once (new), then at minute 30
    assert next_due(store, "acme", "contacts") == next_tick(now, 30, 1)
    [status] = client.get("/sync/status", params={"syncs": "contacts", **KEY}).json()["syncs"]
    assert status["frequency"] == "cron: 30 * * * *"

    back = client.put("/sync/update-connection-frequency", json={**body, "frequency": "every 5 minutes"})
    assert back.json() == {"frequency": "every 5 minutes"}
    assert store.partitions.get("acme", "contacts", "conn-1::base").frequency_cron is None


@pytest.mark.parametrize(
    "frequency, says",
    [
        ("cron: 0 * * *", "not a cron expression of 5 fields"),
        ("cron: 61 * * * *", "not a cron expression of 5 fields"),
        ("cron: 0 0 31 4 *", "never runs"),
        ("cron: 0 0 29 2 *", "less often than every 365 days"),
    ],
)
def test_a_cron_expression_that_cannot_run_is_a_400_naming_it(client, acme, store, frequency, says):
    import_acme(client, acme)

    error = assert_error(
        client.put("/sync/update-connection-frequency", json={"sync_name": "contacts", **KEY, "frequency": frequency}),
        400,
        "invalid_body",
    )

    assert says in str(error)
    assert store.partitions.get("acme", "contacts", "conn-1::base").frequency_cron is None


def test_a_declaration_with_a_bad_cron_expression_is_refused():
    with pytest.raises(InvalidFrequency, match="not a cron expression"):
        hourly.sync(models=[HourlyThing], name="bad", frequency="cron: every hour")
