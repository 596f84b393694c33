"""The API served for real on 127.0.0.1, with an httpx client authenticated with its secret key.

Every response the clients receive is checked against the model its route declares (the one
openapi.json is generated from): errors against the error body, successes against the response model.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sync_pipeline.api import create_app
from sync_pipeline.api.app import routes
from sync_pipeline.api.endpoint import Spec
from sync_pipeline.api.errors import ErrorBody
from sync_pipeline_tests.acme import registry
from sync_pipeline_tests.fakes.server import ServedApp

SECRET = "test-secret-key"


@pytest.fixture
def served(instance, store) -> Iterator[ServedApp]:
    app = create_app(registry=registry, instance=instance, store=store, secret_key=SECRET)
    with ServedApp(app) as running:
        yield running


def spec_of(method: str, path: str) -> Spec | None:
    """The declared spec of the route serving `method path` (paths with a trailing slash included)."""
    path = path.rstrip("/") or "/"
    for route in routes():
        if method in route.methods and route.path_regex.match(path):
            return route.endpoint.spec
    return None


def conforms_to_its_route(response: httpx.Response) -> None:
    """An httpx response hook: the answer has the shape openapi.json promises for its route."""
    response.read()
    spec = spec_of(response.request.method, response.request.url.path)
    if spec is None or not response.content:
        return
    if response.status_code >= 400:
        ErrorBody.model_validate_json(response.content)
    elif spec.response is not None:
        assert response.status_code == spec.status, f"{response.request.url.path} answered {response.status_code}"
        spec.response.model_validate_json(response.content)


@pytest.fixture
def builtin(instance, store) -> Iterator[httpx.Client]:
    """The API over the built-in integrations (Slack, Salesforce, GitHub), with an authenticated client."""
    from sync_pipeline.integrations import load_registry

    app = create_app(registry=load_registry(extra_modules=""), instance=instance, store=store, secret_key=SECRET)
    with ServedApp(app) as running:
        yield from authenticated_client(running.url)


def authenticated_client(url: str) -> Iterator[httpx.Client]:
    """A client with the secret key whose every response is checked against its route's declared model."""
    headers = {"Authorization": f"Bearer {SECRET}"}
    hooks = {"response": [conforms_to_its_route]}
    with httpx.Client(base_url=url, headers=headers, timeout=30, event_hooks=hooks) as http:
        yield http


@pytest.fixture
def client(served) -> Iterator[httpx.Client]:
    yield from authenticated_client(served.url)


@pytest.fixture
def anonymous(served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=30, event_hooks={"response": [conforms_to_its_route]}) as http:
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
