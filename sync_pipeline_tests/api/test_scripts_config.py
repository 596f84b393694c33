"""`GET /scripts/config`: every sync of every integration, as Nango's StandardNangoConfig list."""

from __future__ import annotations

from sync_pipeline_tests.api.conftest import assert_error


def test_every_sync_with_its_models_schedule_and_webhooks(builtin):
    configs = {c["providerConfigKey"]: c for c in builtin.get("/scripts/config").json()}

    assert set(configs) == {"slack", "salesforce", "github"}
    github = configs["github"]
    assert github["provider"] == "github" and github["actions"] == [] and github["on-events"] == []
    [issues] = github["syncs"]
    assert issues["name"] == "issues" and issues["type"] == "sync" and issues["returns"] == ["GithubIssue"]
    assert (issues["sync_type"], issues["runs"], issues["frequency"]) == ("incremental", "every hour", "every hour")
    assert (issues["track_deletes"], issues["auto_start"], issues["enabled"]) == (False, True, True)
    assert issues["webhookSubscriptions"] == ["issues"]
    assert issues["models"] == [{"name": "GithubIssue", "fields": []}]
    schema = issues["json_schema"]["definitions"]["GithubIssue"]
    assert schema["type"] == "object" and {"id", "number", "title", "state"} <= set(schema["required"])
    assert schema["properties"]["labels"]["type"] == "array"
    [users] = configs["slack"]["syncs"]
    assert (users["sync_type"], users["track_deletes"], users["runs"]) == ("full", True, "every day")
    assert users["webhookSubscriptions"] == [] and users["variants"] is False


def test_a_sync_shows_it_uses_variants_once_one_exists(builtin):
    connection = {"provider_config_key": "github", "connection_id": "acme",
                  "credentials": {"type": "OAUTH2", "access_token": "ghp_x"}}  # fmt: skip
    assert builtin.post("/connections", json=connection).status_code == 200
    assert builtin.post("/sync/issues/variant/web", json={"provider_config_key": "github", "connection_id": "acme"}).status_code == 200

    configs = {c["providerConfigKey"]: c for c in builtin.get("/scripts/config", params={"format": "nango"}).json()}

    assert configs["github"]["syncs"][0]["variants"] is True
    assert configs["slack"]["syncs"][0]["variants"] is False


def test_openai_format_and_bad_formats(builtin):
    functions = builtin.get("/scripts/config", params={"format": "openai"}).json()["data"]
    assert {f["name"] for f in functions} == {"users", "contacts", "issues"}
    assert all(f["parameters"] == {"type": "object", "properties": {}, "required": []} for f in functions)
    assert_error(builtin.get("/scripts/config", params={"format": "yaml"}), 400, "invalid_query_params")
