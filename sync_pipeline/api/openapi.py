"""`GET /openapi.json`: the OpenAPI 3.1 document, generated from each route's declared pydantic models."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from sync_pipeline.api.endpoint import Call, Spec, endpoint
from sync_pipeline.api.errors import ErrorBody
from sync_pipeline.api.service import package_version

JSON = "application/json"
REF_TEMPLATE = "#/components/schemas/{model}"


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    """The OpenAPI document of every route `sync_pipeline.api.app.routes()` serves."""
    from sync_pipeline.api.app import routes  # the app imports this module for its own route

    operations = [
        (route.path, method.lower(), route.endpoint.spec)  # type: ignore[attr-defined]
        for route in routes()
        for method in sorted(route.methods - {"HEAD"})  # type: ignore[operator]
    ]
    refs, components = _schemas([spec for _, _, spec in operations])
    paths: dict[str, dict[str, Any]] = {}
    for path, method, spec in operations:
        paths.setdefault(path, {})[method] = _operation(spec, refs, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "sync_pipeline HTTP API",
            "version": package_version(),
            "description": "Nango's HTTP dialect; the reference, with examples, is docs/http-api.md in the repository. "
            "Every path is also accepted with a trailing slash.",
        },
        "components": {"securitySchemes": {"secretKey": {"type": "http", "scheme": "bearer"}}, "schemas": components},
        "security": [{"secretKey": []}],
        "paths": paths,
    }


def _schemas(specs: list[Spec]) -> tuple[dict[tuple[type[BaseModel], str], dict], dict[str, Any]]:
    """JSON Schemas of every body (as validated) and response (as serialised), named once in the components."""
    wanted = {(ErrorBody, "serialization")}
    for spec in specs:
        if spec.body is not None:
            wanted.add((spec.body, "validation"))
        if spec.response is not None:
            wanted.add((spec.response, "serialization"))
    ordered = sorted(wanted, key=lambda item: (item[0].__name__, item[1]))
    refs, definitions = models_json_schema(ordered, ref_template=REF_TEMPLATE)
    return dict(refs), dict(definitions.get("$defs", {}))


def _operation(spec: Spec, refs: dict, components: dict[str, Any]) -> dict[str, Any]:
    parameters = [
        *_parameters(spec.path, "path", components),
        *_parameters(spec.query, "query", components),
        *_parameters(spec.headers, "header", components),
    ]
    success = {"description": "success"}
    if spec.response is not None:
        success["content"] = {JSON: {"schema": refs[(spec.response, "serialization")]}}
    else:
        success["content"] = {JSON: {"schema": {"type": "object"}}}
    error = {"description": "an error, with a code and a message naming what is wrong",
             "content": {JSON: {"schema": refs[(ErrorBody, "serialization")]}}}  # fmt: skip
    operation: dict[str, Any] = {
        "summary": spec.summary,
        "parameters": parameters,
        "responses": {str(spec.status): success, "4XX": error},
    }
    if spec.body is not None:
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": refs[(spec.body, "validation")]}}}
    if not spec.auth:
        operation["security"] = []
    return operation


def _parameters(model: type[BaseModel] | None, where: str, components: dict[str, Any]) -> list[dict[str, Any]]:
    """One parameter per field of a path, query or header model (by its alias, as sent)."""
    if model is None:
        return []
    schema = model.model_json_schema(ref_template=REF_TEMPLATE)
    components.update(schema.get("$defs", {}))
    required = set(schema.get("required", []))
    parameters = []
    for name, field_schema in schema.get("properties", {}).items():
        parameter: dict[str, Any] = {"name": name, "in": where, "required": where == "path" or name in required, "schema": field_schema}
        if field_schema.get("type") == "array":
            parameter.update(style="form", explode=True)  # repeated: ?ids=a&ids=b
        if field_schema.get("type") == "object":
            parameter.update(style="deepObject", explode=True)  # Nango's ?tags[key]=value
        if field_schema.get("deprecated"):
            parameter["deprecated"] = True
        parameters.append(parameter)
    return parameters


# Readable without the key: a client generator, or a person, must be able to learn what the API is first.
@endpoint(auth=False)
def openapi_document(_call: Call) -> dict[str, Any]:
    """This document (no key needed)."""
    return document()
