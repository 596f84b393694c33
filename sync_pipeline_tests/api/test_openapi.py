"""The OpenAPI document: generated from the routes' declared models, it lists every route the app serves.

That every answer matches its route's declared model is checked on every API test's responses (conftest).
"""

from __future__ import annotations

import httpx
import pytest
from starlette.routing import Route

from sync_pipeline.api.app import routes
from sync_pipeline_tests.api.conftest import conforms_to_its_route


def test_every_route_is_documented(client):
    document = client.get("/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    served = set()
    for route in routes():
        assert isinstance(route, Route)
        for method in route.methods - {"HEAD"}:
            served.add((route.path, method.lower()))
            assert method.lower() in paths.get(route.path, {}), f"{method} {route.path} is not in openapi.json"
    documented = {(path, method) for path, operations in paths.items() for method in operations}
    assert documented == served, "openapi.json documents routes the app does not serve"
    for operations in paths.values():
        for operation in operations.values():
            for parameter in operation["parameters"]:
                if parameter["in"] == "path":
                    assert parameter["required"]


def test_the_document_describes_what_a_route_takes(client):
    paths = client.get("/openapi.json").json()["paths"]
    records = {p["name"]: p for p in paths["/records"]["get"]["parameters"]}
    assert records["model"]["required"] and records["model"]["schema"]["pattern"] == "^[A-Z][a-zA-Z0-9_-]+$"
    assert records["ids"]["explode"] and records["ids"]["schema"]["maxItems"] == 100
    assert records["connection-id"]["in"] == "header" and records["connection-id"]["required"]
    body = paths["/connections"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/ImportBody"}
    assert paths["/webhook/{provider_config_key}"]["post"]["security"] == []


def test_an_answer_unlike_its_declared_model_is_caught(served):
    """The response check is not vacuous: a success body missing a declared field fails it."""
    request = httpx.Request("GET", served.url + "/sync/status")
    with pytest.raises(ValueError, match="syncs"):
        conforms_to_its_route(httpx.Response(200, json={"sync": []}, request=request))
