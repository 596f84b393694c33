"""Integrations' OAuth client credentials: set with Nango's PATCH /integrations/{key} (or the CLI), stored sealed,
never answered."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from sync_pipeline.cli import main
from sync_pipeline.store import IntegrationCredentialsStore
from sync_pipeline_tests.api.conftest import assert_error

CLIENT = {"type": "OAUTH2", "client_id": "3.14-client", "client_secret": "shh-client-secret"}


@pytest.fixture(scope="module")
def private_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


def test_set_and_read_client_credentials_without_their_secrets(builtin, store, private_key):
    response = builtin.patch("/integrations/slack", json={"credentials": CLIENT})
    assert response.status_code == 200, response.text
    assert response.json()["data"]["credentials"] == {
        "type": "OAUTH2", "client_id": "3.14-client", "client_secret": None, "scopes": None, "webhook_secret": None,
    }  # fmt: skip
    app = {"type": "APP", "app_id": 123456, "private_key": private_key, "app_link": "https://github.com/apps/acme"}
    assert builtin.patch("/integrations/github", json={"credentials": app}).status_code == 200

    listed = builtin.get("/integrations")
    assert [i["unique_key"] for i in listed.json()["data"]] == ["slack", "salesforce", "github"]
    one = builtin.get("/integrations/github", params={"include": "webhook,credentials"}).json()["data"]
    assert one["credentials"] == {"type": "APP", "app_id": "123456", "private_key": None, "app_link": app["app_link"]}
    assert one["unique_key"] == "github" and one["created_at"] and one["updated_at"]
    assert "credentials" not in builtin.get("/integrations/slack").json()["data"]
    for answer in (listed.text, builtin.get("/integrations/slack", params={"include": "credentials"}).text):
        assert "shh-client-secret" not in answer and "PRIVATE KEY" not in answer
    # What refreshes use:
    assert store.integration_credentials.get("slack").credentials == CLIENT
    assert store.integration_credentials.get("github").credentials["private_key"] == private_key

    replaced = {**CLIENT, "client_secret": "rotated-secret"}
    assert builtin.patch("/integrations/slack", json={"credentials": replaced}).status_code == 200
    assert store.integration_credentials.get("slack").credentials["client_secret"] == "rotated-secret"


def test_client_credentials_are_sealed_at_rest(store):
    sealed = IntegrationCredentialsStore(store.engine, encryption_key="an-encryption-key")
    sealed.put("slack", CLIENT)

    with store.engine.connect() as conn:
        raw = conn.execute(text("SELECT credentials FROM sp_integration_credentials")).scalar_one()
    assert raw.startswith("fernet:") and "shh-client-secret" not in raw and "3.14-client" not in raw
    assert sealed.get("slack").credentials == CLIENT
    assert "shh" not in repr(sealed.get("slack"))


def test_bad_client_credentials_are_refused_naming_the_problem_and_store_nothing(builtin, store, private_key):
    cases = [
        ("slack", {"credentials": {"type": "APP", "app_id": "1", "private_key": private_key}}, 400, "invalid_body"),
        ("github", {"credentials": CLIENT}, 400, "invalid_body"),
        ("github", {"credentials": {"type": "APP", "app_id": "1", "private_key": "-----BEGIN nonsense"}}, 400, "invalid_body"),
        ("slack", {"credentials": {"type": "OAUTH2", "client_id": "x"}}, 400, "invalid_body"),
        ("slack", {"credentials": {"type": "OAUTH2", "client_id": "x", "client_secret": ""}}, 400, "invalid_body"),
        ("slack", {"credentials": {"type": "MAGIC"}}, 400, "invalid_body"),
        ("slack", {}, 400, "invalid_body"),
        ("nowhere", {"credentials": CLIENT}, 404, "unknown_provider_config"),
    ]
    for key, body, status, code in cases:
        response = builtin.patch(f"/integrations/{key}", json=body)
        error = assert_error(response, status, code)
        assert "nonsense" not in response.text
        if key == "github" and body["credentials"]["type"] == "APP":
            assert "PEM private key" in error["message"]
    assert_error(builtin.get("/integrations/nowhere"), 404, "unknown_provider_config")
    assert store.integration_credentials.get("slack") is None and store.integration_credentials.get("github") is None


def test_the_cli_sets_client_credentials_asking_for_the_secret_unseen(store, database_url, monkeypatch, tmp_path, private_key):
    monkeypatch.setenv("SYNC_PIPELINE_DATABASE_URL", database_url)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    runner = CliRunner()

    result = runner.invoke(main, ["integration-credentials", "salesforce", "--client-id", "sf-client"], input="sf-secret\n")
    assert result.exit_code == 0, result.output
    assert "sf-secret" not in result.output
    assert store.integration_credentials.get("salesforce").credentials == {
        "type": "OAUTH2", "client_id": "sf-client", "client_secret": "sf-secret"
    }  # fmt: skip

    key_file = tmp_path / "app.pem"
    key_file.write_text(private_key)
    result = runner.invoke(main, ["integration-credentials", "github", "--app-id", "77", "--private-key-file", str(key_file)])
    assert result.exit_code == 0, result.output
    assert store.integration_credentials.get("github").credentials["app_id"] == "77"

    for args, expected in [
        (["integration-credentials", "nowhere", "--client-id", "x", "--client-secret", "y"], "no integration"),
        (["integration-credentials", "github", "--client-id", "x", "--client-secret", "y"], "type APP"),
        (["integration-credentials", "slack"], "either --client-id"),
        (["integration-credentials", "github", "--app-id", "1"], "--private-key-file"),
    ]:
        result = runner.invoke(main, args)
        assert result.exit_code != 0 and expected in result.output, result.output
    bad_key = tmp_path / "bad.pem"
    bad_key.write_text("not a key at all")
    result = runner.invoke(main, ["integration-credentials", "github", "--app-id", "1", "--private-key-file", str(bad_key)])
    assert result.exit_code != 0 and "PEM private key" in result.output and "not a key at all" not in result.output
