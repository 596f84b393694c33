"""The service routes anyone may call without the key: `GET /` (what this is, where to go) and `GET /health`."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import text
from starlette.responses import JSONResponse
from starlette.routing import Route

from sync_pipeline.api.endpoint import Call, endpoint

NAME = "sync_pipeline"


def package_version() -> str:
    """The installed version of sync_pipeline (what `sync-pipeline --version` prints too)."""
    try:
        return version("sync_pipeline")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree that was never installed
        return "0+unknown"


class Links(BaseModel):
    health: str
    openapi: str
    documentation: str


class About(BaseModel):
    name: str
    version: str
    description: str
    links: Links
    authentication: str


class Health(BaseModel):
    status: Literal["ok"]
    database: Literal["ok"]
    version: str


@endpoint(auth=False, response=About)
def root(_call: Call) -> dict[str, Any]:
    """Name, version and links (no key needed).

    A person opening the API's address in a browser lands here.
    """
    return {
        "name": NAME,
        "version": package_version(),
        "description": "Keeps copies of your customers' SaaS records and tells your app what changed (Nango's HTTP dialect).",
        "links": {
            "health": "/health",
            "openapi": "/openapi.json",
            "documentation": "docs/http-api.md in the sync_pipeline repository",
        },
        "authentication": "every other route needs the header `Authorization: Bearer <secret key>`",
    }


@endpoint(auth=False, response=Health)
def health(call: Call) -> JSONResponse:
    """200 when the database answers, 503 when it does not (no key needed).

    The 503 is an error (`database_unreachable`) saying why, without the database's URL or any secret.
    """
    try:
        with call.services.store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as error:  # noqa: BLE001 - any failure to reach the database is "unavailable"
        first_line = (str(error).strip().splitlines() or [""])[0]
        message = f"the database does not answer: {type(error).__name__}: {first_line}"[:300]
        return JSONResponse({"error": {"code": "database_unreachable", "message": message, "errors": []}}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok", "version": package_version()})


def routes() -> list[Route]:
    return [Route("/", root, methods=["GET"]), Route("/health", health, methods=["GET"])]
