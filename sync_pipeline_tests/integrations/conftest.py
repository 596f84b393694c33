"""Fixtures of the built-in integration tests: a fake server per provider and a harness over the real registry."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sync_pipeline.api import create_app

from sync_pipeline.integrations import load_registry
from sync_pipeline_tests.fakes.github import GithubApi
from sync_pipeline_tests.fakes.salesforce import SalesforceApi
from sync_pipeline_tests.fakes.server import ServedApp
from sync_pipeline_tests.fakes.slack import SlackApi
from sync_pipeline_tests.harness import SyncHarness


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


API_SECRET = "integrations-secret"


@pytest.fixture
def api(instance, store, sync) -> Iterator[httpx.Client]:
    """The HTTP API over the built-in integrations, served on 127.0.0.1, with a client holding its key."""
    app = create_app(registry=sync.registry, instance=instance, store=store, secret_key=API_SECRET)
    with ServedApp(app) as served:
        with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {API_SECRET}"}, timeout=30) as client:
            yield client
