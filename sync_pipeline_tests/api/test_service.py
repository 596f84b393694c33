"""What anyone may read without the key: what the service is (`GET /`), whether it is up (`GET /health`), and its
OpenAPI document."""

from __future__ import annotations

import shutil
from importlib.metadata import version

import httpx

from sync_pipeline.api import create_app
from sync_pipeline.store import Store
from sync_pipeline_tests.acme import registry
from sync_pipeline_tests.api.conftest import assert_error
from sync_pipeline_tests.fakes.server import ServedApp


def test_the_root_names_the_service_its_version_and_where_to_go(anonymous):
    response = anonymous.get("/")

    assert response.status_code == 200
    about = response.json()
    assert about["name"] == "sync_pipeline" and about["version"] == version("sync_pipeline")
    assert about["links"]["health"] == "/health" and about["links"]["openapi"] == "/openapi.json"
    assert anonymous.get(about["links"]["openapi"]).status_code == 200


def test_the_openapi_document_needs_no_key_but_the_other_routes_do(anonymous):
    document = anonymous.get("/openapi.json")

    assert document.status_code == 200 and document.json()["openapi"].startswith("3.")
    assert document.json()["paths"]["/health"]["get"]["security"] == []
    assert_error(anonymous.get("/connections"), 401, "missing_auth_header")


def test_health_checks_the_database(anonymous):
    response = anonymous.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "version": version("sync_pipeline")}


def test_health_answers_503_with_the_reason_when_the_database_is_gone(instance, tmp_path):
    folder = tmp_path / "db"
    folder.mkdir()
    store = Store.from_url(f"sqlite:///{folder / 'gone.db'}")
    app = create_app(registry=registry, instance=instance, store=store, secret_key="k")
    with ServedApp(app) as served:
        shutil.rmtree(folder)
        store.engine.dispose()  # no pooled connection hides the loss

        response = httpx.get(f"{served.url}/health", timeout=30)

    assert_error(response, 503, "database_unreachable")
    assert "OperationalError" in response.json()["error"]["message"]
