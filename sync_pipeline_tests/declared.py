"""Tests that declare an integration of their own (a short timeout, a metadata-writing sync...) serve the HTTP API
over its registry and run it through its Dagster jobs with these helpers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from dagster import DagsterInstance

from sync_pipeline.api import create_app
from sync_pipeline.sdk import Registry
from sync_pipeline.store import Store
from sync_pipeline_tests.fakes.server import ServedApp

SECRET = "declared-integration-secret"


@contextmanager
def api_over(registry: Registry, instance: DagsterInstance, store: Store) -> Iterator[httpx.Client]:
    """The HTTP API over `registry`, served on 127.0.0.1, and a client holding its key."""
    app = create_app(registry=registry, instance=instance, store=store, secret_key=SECRET)
    with ServedApp(app) as served:
        with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {SECRET}"}, timeout=30) as client:
            yield client


def connect(api: httpx.Client, integration: str, acme, metadata: dict | None = None, connection_id: str = "conn-1") -> None:
    """A connection of `integration` to the fake Acme API (`acme` fixture)."""
    response = api.post("/connections", json={
        "provider_config_key": integration, "connection_id": connection_id,
        "credentials": {"type": "API_KEY", "apiKey": acme.token},
        "connection_config": {"base_url": acme.url}, "metadata": metadata or {},
    })  # fmt: skip
    assert response.status_code == 200, response.text
