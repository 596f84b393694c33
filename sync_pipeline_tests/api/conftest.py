"""The API served for real on 127.0.0.1, with an httpx client authenticated with its secret key."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sync_pipeline.api import create_app
from sync_pipeline_tests.acme import registry
from sync_pipeline_tests.fakes.server import ServedApp

SECRET = "test-secret-key"


@pytest.fixture
def served(instance, store) -> Iterator[ServedApp]:
    app = create_app(registry=registry, instance=instance, store=store, secret_key=SECRET)
    with ServedApp(app) as running:
        yield running


@pytest.fixture
def builtin(instance, store) -> Iterator[httpx.Client]:
    """The API over the built-in integrations (Slack, Salesforce, GitHub), with an authenticated client."""
    from sync_pipeline.integrations import load_registry

    app = create_app(registry=load_registry(extra_modules=""), instance=instance, store=store, secret_key=SECRET)
    with ServedApp(app) as running:
        with httpx.Client(base_url=running.url, headers={"Authorization": f"Bearer {SECRET}"}, timeout=30) as http:
            yield http


@pytest.fixture
def client(served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {SECRET}"}, timeout=30) as http:
        yield http


@pytest.fixture
def anonymous(served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=30) as http:
        yield http


def import_acme(client: httpx.Client, acme, connection_id: str = "conn-1", **extra) -> httpx.Response:
    """Import a connection of the test integration pointed at the fake Acme API."""
    response = client.post(
        "/connections",
        json={
            "provider_config_key": "acme",
            "connection_id": connection_id,
            "credentials": {"type": "API_KEY", "apiKey": acme.token},
            "connection_config": {"base_url": acme.url},
            **extra,
        },
    )
    assert response.status_code == 200, response.text
    return response


def stream_headers(connection_id: str = "conn-1", integration: str = "acme") -> dict[str, str]:
    return {"Connection-Id": connection_id, "Provider-Config-Key": integration}


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["errors"], list)
    assert "Traceback" not in response.text
    return error
