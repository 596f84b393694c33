"""`@endpoint`: what every route shares (auth, a bounded body, a worker thread, JSON out, its declared request
and response models, from which the OpenAPI document is generated), so handlers stay short."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dagster import DagsterInstance
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, QueryParams
from starlette.requests import Request
from pydantic import BaseModel
from starlette.responses import JSONResponse, Response

from sync_pipeline.api.auth import authenticate
from sync_pipeline.api.errors import ApiError, parse
from sync_pipeline.sdk.declaration import Integration, Registry
from sync_pipeline.store import Store

MAX_BODY_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class Services:
    """What handlers work with; one per app, kept in `app.state.services`."""

    registry: Registry
    instance: DagsterInstance
    store: Store
    secret_key: str

    def integration(self, provider_config_key: str) -> Integration:
        found = self.registry.get(provider_config_key)
        if found is None:
            raise ApiError(404, "unknown_provider_config", f"there is no integration {provider_config_key!r}")
        return found


@dataclass(frozen=True)
class Spec:
    """What a route takes and answers, as pydantic models: validated by `Call.parse_*`, documented in openapi.json."""

    summary: str
    auth: bool = True
    status: int = 200
    path: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    headers: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None  # None: a JSON object the document does not describe further


@dataclass(frozen=True)
class Call:
    """One request as a handler sees it: already authenticated, body already read (raw bytes)."""

    services: Services
    spec: Spec
    method: str
    path_params: Mapping[str, str]
    query: QueryParams
    headers: Headers
    body: bytes

    def parse_path(self) -> Any:
        return parse(_declared(self.spec.path, "path"), self.path_params, "path")

    def parse_query(self, data: Mapping[str, Any] | None = None) -> Any:
        """The query as the route's query model (`data`: the query as a handler prepared it)."""
        return parse(_declared(self.spec.query, "query"), dict(self.query) if data is None else data, "query")

    def parse_headers(self) -> Any:
        return parse(_declared(self.spec.headers, "headers"), dict(self.headers), "headers")

    def parse_body(self, data: Any = None) -> Any:
        """The JSON body as the route's body model (`data`: the body as a handler prepared it)."""
        return parse(_declared(self.spec.body, "body"), self.json() if data is None else data, "body")

    def json(self) -> Any:
        """The body as JSON: 400 `invalid_body` when it is not JSON (an empty body reads as `{}`)."""
        if not self.body.strip():
            return {}
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "invalid_body", "the request body is not valid JSON") from None

    def query_dict(self, repeatable: frozenset[str] = frozenset()) -> dict[str, Any]:
        """Query parameters as a dict; names in `repeatable` keep every value, others the last one."""
        out: dict[str, Any] = {}
        for name, value in self.query.multi_items():
            if name in repeatable:
                out.setdefault(name, []).append(value)
            else:
                out[name] = value
        return out


def _declared(model: type[BaseModel] | None, where: str) -> type[BaseModel]:
    if model is None:
        raise TypeError(f"the route parses its {where} but declares no {where} model in @endpoint(...)")
    return model


Handler = Callable[[Call], Any]


def endpoint(
    handler: Handler | None = None,
    *,
    auth: bool = True,
    status: int = 200,
    path: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    headers: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
):
    """Turn `handler(call) -> dict | Response` into a Starlette endpoint carrying its `Spec` (`endpoint.spec`).

    Handlers are plain functions run in the thread pool: the store and Dagster's instance are blocking.
    The first line of the handler's docstring is the operation's summary.
    """

    def wrap(fn: Handler) -> Callable[[Request], Any]:
        summary = (fn.__doc__ or fn.__name__.replace("_", " ")).strip().splitlines()[0]
        spec = Spec(summary, auth, status, path, query, headers, body, response)

        async def run(request: Request) -> Response:
            services: Services = request.app.state.services
            if auth:
                authenticate(request.headers, services.secret_key)
            call = Call(
                services=services,
                spec=spec,
                method=request.method,
                path_params=request.path_params,
                query=request.query_params,
                headers=request.headers,
                body=await read_body(request),
            )
            result = await run_in_threadpool(fn, call)
            return result if isinstance(result, Response) else JSONResponse(result, status_code=status)

        run.__name__ = fn.__name__
        run.__doc__ = fn.__doc__
        run.spec = spec  # type: ignore[attr-defined]
        return run

    return wrap(handler) if handler is not None else wrap


async def read_body(request: Request) -> bytes:
    """The body, refused with 413 past 5 MB: from Content-Length before reading, and while reading (chunked bodies)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large() -> ApiError:
    return ApiError(413, "request_too_large", f"the request body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MB")
