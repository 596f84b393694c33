"""Fixtures of the built-in integration tests: a fake server per provider and a harness over the real registry."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from sync_pipeline.integrations import load_registry
from sync_pipeline.store import ChangeQuery, Store, StreamKey
from sync_pipeline_tests.conftest import SyncHarness
from sync_pipeline_tests.fakes.github import GithubApi
from sync_pipeline_tests.fakes.salesforce import SalesforceApi
from sync_pipeline_tests.fakes.server import ServedApp
from sync_pipeline_tests.fakes.slack import SlackApi


@pytest.fixture
def sync(instance, store, database_url) -> SyncHarness:
    """Runs the built-in integrations, as `load_registry()` finds them, against the session's database."""
    return SyncHarness(instance, store, database_url, load_registry(extra_modules=""))


def _served(api):
    with ServedApp(api) as served:
        api.url = served.url
        yield api


@pytest.fixture(scope="session")
def _slack_server() -> Iterator[SlackApi]:
    yield from _served(SlackApi())


@pytest.fixture(scope="session")
def _salesforce_server() -> Iterator[SalesforceApi]:
    yield from _served(SalesforceApi())


@pytest.fixture(scope="session")
def _github_server() -> Iterator[GithubApi]:
    yield from _served(GithubApi())


@pytest.fixture
def slack_api(_slack_server) -> SlackApi:
    """Slack's Web API on 127.0.0.1, with no members and no recorded requests."""
    _slack_server.reset()
    return _slack_server


@pytest.fixture
def salesforce_api(_salesforce_server) -> SalesforceApi:
    _salesforce_server.reset()
    return _salesforce_server


@pytest.fixture
def github_api(_github_server) -> GithubApi:
    _github_server.reset()
    return _github_server


def metadata_of(result, model: str) -> dict:
    """The materialization metadata of `model` in a sync run, whatever the op that wrote it is called."""
    [materialization] = [
        event.step_materialization_data.materialization
        for event in result.all_events
        if event.is_step_materialization and event.asset_key.path[-1] == model
    ]
    return {key: value.value for key, value in materialization.metadata.items()}


def counts(result, model: str) -> tuple[int, int, int]:
    meta = metadata_of(result, model)
    return meta["added"], meta["updated"], meta["deleted"]


def failure_message(result) -> str:
    """The error that failed the run's step."""
    assert not result.success
    [failure] = [event for event in result.all_events if event.is_step_failure]
    return failure.step_failure_data.error.message


def records(store: Store, key: StreamKey) -> dict[str, dict]:
    """The live records of a stream, by id, as the records API would return their payloads."""
    rows = store.records.changes(key, ChangeQuery(limit=10_000))
    return {r.record_id: json.loads(r.payload) for r in rows if r.deleted_at is None and r.payload}


def deleted_ids(store: Store, key: StreamKey) -> set[str]:
    return {r.record_id for r in store.records.changes(key, ChangeQuery(limit=10_000, actions=("DELETED",)))}
