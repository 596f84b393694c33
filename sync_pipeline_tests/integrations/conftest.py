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


@pytest.fixture(scope="session")
def app_key_pair() -> tuple[str, str]:
    """A GitHub App's RSA key pair, PEM text: (private, public)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return private, public


@pytest.fixture
def client_credentials(store, github_api, app_key_pair) -> dict[str, dict]:
    """Each integration's OAuth client credentials, set as the app would (the fakes know the same ones)."""
    from sync_pipeline_tests.fakes.oauth import CLIENT_ID, CLIENT_SECRET

    oauth = {"type": "OAUTH2", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    credentials = {
        "slack": oauth,
        "salesforce": oauth,
        "github": {"type": "APP", "app_id": github_api.app_id, "private_key": app_key_pair[0]},
    }
    for integration, secret in credentials.items():
        store.integration_credentials.put(integration, secret)
    github_api.app_public_key = app_key_pair[1]
    return credentials
