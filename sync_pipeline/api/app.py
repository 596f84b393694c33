"""The Starlette application: routes, error handlers, trailing-slash tolerance, and its construction from the environment."""

from __future__ import annotations

import os

from dagster import DagsterInstance
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from sync_pipeline.api import (
    connections,
    integrations,
    notifications,
    openapi,
    provider_webhooks,
    records,
    scripts,
    service,
    syncs,
)
from sync_pipeline.api.endpoint import Services
from sync_pipeline.api.errors import ApiError, api_error_response, http_error_response, unexpected_error_response
from sync_pipeline.sdk.declaration import Registry
from sync_pipeline.store import EncryptionKeyError, Store

SECRET_KEY_VARIABLE = "SYNC_PIPELINE_SECRET_KEY"


def routes() -> list[Route]:
    return [
        *connections.routes(),
        *integrations.routes(),
        *records.routes(),
        *scripts.routes(),
        *syncs.routes(),
        *provider_webhooks.routes(),
        *notifications.routes(),
        *service.routes(),
        Route("/openapi.json", openapi.openapi_document, methods=["GET"]),
    ]


def create_app(*, registry: Registry, instance: DagsterInstance, store: Store, secret_key: str) -> Starlette:
    """The HTTP API of docs/http-api.md over one registry, Dagster instance and store."""
    if not secret_key:
        raise ValueError("the API needs a non-empty secret key")
    app = Starlette(
        routes=routes(),
        exception_handlers={
            ApiError: api_error_response,
            HTTPException: http_error_response,
            Exception: unexpected_error_response,
        },
    )
    app.router.redirect_slashes = False  # we route `/records/` as `/records` instead: clients do not all follow a 307
    app.state.services = Services(registry=registry, instance=instance, store=store, secret_key=secret_key)
    app.add_middleware(TrailingSlashTolerant)
    return app


def app_from_env() -> Starlette:
    """The app `sync-pipeline serve` runs: integrations, Dagster instance and database from the environment."""
    from sync_pipeline.integrations import load_registry
    from sync_pipeline.settings import database_url
    from sync_pipeline.store import checked_store

    secret_key = os.environ.get(SECRET_KEY_VARIABLE, "")
    if not secret_key.strip():
        raise SystemExit(
            f"{SECRET_KEY_VARIABLE} is not set: the HTTP API refuses to start without the secret key its clients "
            f"must send (Authorization: Bearer <key>). Set it, e.g. {SECRET_KEY_VARIABLE}=$(openssl rand -hex 32)."
        )
    try:
        store = checked_store(database_url())
    except EncryptionKeyError as error:
        raise SystemExit(f"sync-pipeline cannot start: {error}") from None
    return create_app(
        registry=load_registry(),
        instance=DagsterInstance.get(),
        store=store,
        secret_key=secret_key.strip(),
    )


class TrailingSlashTolerant:
    """Route `/records/` like `/records`: Nango's Node client puts a slash before the query string."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and len(path) > 1 and path.endswith("/"):
            scope = {**scope, "path": path.rstrip("/") or "/"}
        await self.app(scope, receive, send)
