"""The OpenAPI document lists every route of the app, with its methods."""

from __future__ import annotations

from starlette.routing import Route

from sync_pipeline.api.app import routes


def test_every_route_is_documented(client):
    document = client.get("/openapi.json").json()
    assert document["openapi"].startswith("3.")
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
