"""Errors as the contract spells them: `{"error": {"code", "message", "errors": [...]}}`, and the one validation helper."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

log = logging.getLogger("sync_pipeline.api")

Where = Literal["query", "body", "headers", "path"]
# Where a problem was found decides its code, as in Nango.
_INVALID = {
    "query": "invalid_query_params",
    "body": "invalid_body",
    "headers": "invalid_headers",
    "path": "invalid_uri_params",
}
Model = TypeVar("Model", bound=BaseModel)


class ApiError(Exception):
    """An answer other than success: raised anywhere in a handler, rendered by `api_error_response`."""

    def __init__(self, status: int, code: str, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors or []


def invalid(where: Where, path: str, message: str, code: str = "invalid") -> ApiError:
    """A 400 about one field, in the shape pydantic failures take too."""
    return ApiError(400, _INVALID[where], message, [{"code": code, "message": message, "path": [path]}])


def not_found(code: str, message: str) -> ApiError:
    return ApiError(404, code, message)


def parse(model: type[Model], data: Mapping[str, Any] | Any, where: Where) -> Model:
    """Validate `data` (a query, headers, a JSON body or path parameters) as `model`, or raise a 400 naming each problem."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = [_problem(item, where) for item in error.errors(include_url=False, include_input=False)]
        summary = "; ".join(f"{'.'.join(map(str, p['path'])) or where}: {p['message']}" for p in problems)
        raise ApiError(400, _INVALID[where], f"invalid {where}: {summary}", problems) from None


def _problem(item: Mapping[str, Any], where: Where) -> dict[str, Any]:
    message = str(item["msg"]).removeprefix("Value error, ")
    if item["type"] == "extra_forbidden":
        message = f"unknown {'query parameter' if where == 'query' else 'field'}"
    return {"code": item["type"], "message": message, "path": list(item["loc"])}


class Problem(BaseModel):
    code: str
    message: str
    path: list[str | int]


class ErrorDetail(BaseModel):
    code: str
    message: str
    errors: list[Problem]


class ErrorBody(BaseModel):
    """Every error: `{"error": {"code", "message", "errors": [{"code", "message", "path"}]}}`."""

    error: ErrorDetail


def error_body(code: str, message: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "errors": errors or []}}


async def api_error_response(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return JSONResponse(error_body(error.code, error.message, error.errors), status_code=error.status)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


async def http_error_response(_request: Request, error: Exception) -> JSONResponse:
    """Starlette's own 404/405 (an unknown path or method), in our error shape."""
    assert isinstance(error, HTTPException)
    code = _HTTP_CODES.get(error.status_code, "http_error")
    return JSONResponse(error_body(code, str(error.detail)), status_code=error.status_code, headers=error.headers)


async def unexpected_error_response(request: Request, error: Exception) -> JSONResponse:
    """A bug, not bad input: log it with its traceback and answer without one."""
    log.error("unhandled error answering %s %s", request.method, request.url.path, exc_info=error)
    return JSONResponse(error_body("server_error", "an unexpected error occurred; see the server log"), status_code=500)
