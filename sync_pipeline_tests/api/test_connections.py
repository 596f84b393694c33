"""Connections over HTTP: import, list, read, delete, metadata; auth and generic error handling."""

from __future__ import annotations

import pytest

from sync_pipeline.store import StreamKey
from sync_pipeline_tests.api.conftest import SECRET, assert_error, import_acme


def test_import_list_get(client, acme, instance, store):
    created = import_acme(client, acme, metadata={"team": "a"}).json()
    assert created["connection_id"] == "conn-1" and created["provider_config_key"] == "acme"
    assert created["credentials"] == {"type": "API_KEY", "apiKey": acme.token}
    # Importing creates the base partition of every sync of the integration, scheduled.
    for sync in ("contacts", "leads", "directory"):
        assert instance.get_dynamic_partitions(f"acme__{sync}") == ["conn-1::base"]
    assert store.partitions.get("acme", "contacts", "conn-1::base").next_due_at is not None
    assert store.partitions.get("acme", "directory", "conn-1::base").next_due_at is None  # auto_start False

    listed = client.get("/connections").json()["connections"]
    assert listed == [{
        "id": created["id"], "connection_id": "conn-1", "provider_config_key": "acme", "provider": "acme",
        "created": created["created_at"], "metadata": {"team": "a"}, "errors": [], "end_user": None, "tags": {},
    }]
    assert client.get("/connections", params={"integrationId": "other"}).json() == {"connections": []}
    assert len(client.get("/connections/", params={"connectionId": "conn-1"}).json()["connections"]) == 1

    for path in ("/connections/conn-1", "/connection/conn-1/"):
        got = client.get(path, params={"provider_config_key": "acme", "force_refresh": "true"}).json()
        assert got["credentials"]["apiKey"] == acme.token
        assert got["connection_config"] == {"base_url": acme.url}
        assert got["last_fetched_at"] is not None

    # Importing the same pair again updates it.
    import_acme(client, acme, metadata={"team": "b"})
    assert len(client.get("/connections").json()["connections"]) == 1
    assert store.connections.get("acme", "conn-1").metadata == {"team": "b"}


def test_import_errors_store_nothing(client, acme, store):
    base = {"provider_config_key": "acme", "connection_id": "c", "credentials": {"type": "NONE"}}
    cases = [
        ({**base, "credentials": {"type": "OAUTH2"}}, 400, "invalid_body"),
        ({**base, "credentials": {"type": "MAGIC"}}, 400, "invalid_body"),
        ({**base, "connection_id": "has space"}, 400, "invalid_body"),
        ({**base, "connection_id": "x" * 256}, 400, "invalid_body"),
        ({**base, "webhook_url_override": "not a url"}, 400, "invalid_body"),
        ({k: v for k, v in base.items() if k != "credentials"}, 400, "invalid_body"),
        ([base], 400, "invalid_body"),
        ({**base, "provider_config_key": "nowhere"}, 404, "unknown_provider_config"),
    ]
    for body, status, code in cases:
        assert_error(client.post("/connections", json=body), status, code)
    assert_error(client.post("/connections", content=b"not json", headers={"Content-Type": "application/json"}),
                 400, "invalid_body")
    assert store.connections.list() == []


def test_delete_removes_partitions_and_records(client, acme, harness, instance, store):
    acme.put("c1", "Ann")
    import_acme(client, acme)
    import_acme(client, acme, "conn-2")
    assert harness.run("acme", "contacts", "conn-1").success
    assert client.post("/sync/directory/variant/v1", json={"provider_config_key": "acme", "connection_id": "conn-1"}).status_code == 200
    assert store.records.count_live(StreamKey("acme", "conn-1", "AcmeContact")) == 1

    assert_error(client.delete("/connections/conn-1"), 400, "invalid_query_params")
    assert_error(client.delete("/connections/nobody", params={"provider_config_key": "acme"}), 404, "unknown_connection")
    response = client.delete("/connection/conn-1", params={"provider_config_key": "acme"})
    # Three syncs' base partitions and the directory's v1 variant; one contact (contacts sync only ran).
    assert response.json() == {"success": True, "deleted": {"partitions": 4, "schedules": 4, "records": 1}}
    assert instance.get_dynamic_partitions("acme__contacts") == ["conn-2::base"]
    assert instance.get_dynamic_partitions("acme__directory") == ["conn-2::base"]
    assert [row.connection_id for row in store.partitions.list("acme")] == ["conn-2"] * 3
    assert store.records.count_live(StreamKey("acme", "conn-1", "AcmeContact")) == 0
    assert_error(client.get("/connections/conn-1", params={"provider_config_key": "acme"}), 404, "unknown_connection")


def test_metadata_replace_merge_all_or_nothing(client, acme, store):
    import_acme(client, acme, metadata={"a": 1, "b": 2})
    import_acme(client, acme, "conn-2")
    body = {"connection_id": ["conn-1", "conn-2"], "provider_config_key": "acme", "metadata": {"a": 9}}
    response = client.post("/connections/metadata", json=body)
    assert response.status_code == 201 and response.json() == body
    assert store.connections.get("acme", "conn-1").metadata == {"a": 9}

    body = {"connection_id": "conn-1", "provider_config_key": "acme", "metadata": {"c": 3}}
    response = client.patch("/connection/metadata/", json=body)
    assert response.status_code == 200 and response.json() == body
    assert store.connections.get("acme", "conn-1").metadata == {"a": 9, "c": 3}

    unknown = {"connection_id": ["conn-1", "nobody"], "provider_config_key": "acme", "metadata": {"z": 0}}
    assert_error(client.post("/connections/metadata", json=unknown), 404, "unknown_connection")
    assert_error(client.patch("/connections/metadata", json=unknown), 404, "unknown_connection")
    assert_error(client.post("/connections/metadata", json={**unknown, "connection_id": []}), 400, "invalid_body")
    assert_error(client.post("/connections/metadata", json={**unknown, "metadata": "x"}), 400, "invalid_body")
    assert store.connections.get("acme", "conn-1").metadata == {"a": 9, "c": 3}
    assert store.connections.get("acme", "conn-2").metadata == {"a": 9}


def test_auth(anonymous, client):
    assert_error(anonymous.get("/connections"), 401, "missing_auth_header")
    assert_error(anonymous.get("/connections", headers={"Authorization": "Basic abc"}), 401, "missing_auth_header")
    assert_error(anonymous.get("/connections", headers={"Authorization": "Bearer wrong"}), 401, "unknown_account")
    assert_error(anonymous.get("/connections", headers={"Authorization": f"Bearer {SECRET}x"}), 401, "unknown_account")
    assert anonymous.get("/connections", headers={"Authorization": f"bearer {SECRET}"}).status_code == 200


def test_generic_errors(client, acme):
    assert_error(client.get("/nowhere"), 404, "not_found")
    assert_error(client.put("/connections"), 405, "method_not_allowed")
    too_big = b'{"x": "' + b"a" * (5 * 1024 * 1024) + b'"}'
    assert_error(client.post("/connections", content=too_big), 413, "request_too_large")

    def chunks():
        for _ in range(6):
            yield b"a" * (1024 * 1024)

    assert_error(client.post("/connections", content=chunks()), 413, "request_too_large")


def test_a_bug_is_a_generic_500(client, monkeypatch):
    from sync_pipeline.store import ConnectionStore

    def explode(*_args, **_kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(ConnectionStore, "page", explode)
    response = client.get("/connections")
    error = assert_error(response, 500, "server_error")
    assert "secret internals" not in response.text and "RuntimeError" not in error["message"]


def test_app_from_env_refuses_without_secret_key(monkeypatch):
    from sync_pipeline.api import app_from_env

    monkeypatch.delenv("SYNC_PIPELINE_SECRET_KEY", raising=False)
    with pytest.raises(SystemExit, match="SYNC_PIPELINE_SECRET_KEY"):
        app_from_env()


def test_app_from_env(monkeypatch, instance, database_url, tmp_path):
    from starlette.applications import Starlette

    from sync_pipeline.api import app_from_env

    monkeypatch.setenv("SYNC_PIPELINE_SECRET_KEY", "k")
    monkeypatch.setenv("SYNC_PIPELINE_DATABASE_URL", database_url)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    app = app_from_env()
    assert isinstance(app, Starlette)
    assert set(app.state.services.registry.integrations) >= {"slack", "salesforce", "github"}
