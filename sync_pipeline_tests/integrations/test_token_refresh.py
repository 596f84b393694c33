"""Connections that stay alive: tokens refreshed before they expire and when the provider says they did,
once for concurrent runs, and a refused refresh reported to the app."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from sync_pipeline.api import create_app
from sync_pipeline.orchestration.credentials import CredentialKeeper
from sync_pipeline.sdk.runner import PartitionState, run_sync
from sync_pipeline.store import StreamKey
from sync_pipeline.notifications.delivery import deliver_due
from sync_pipeline_tests.api.conftest import SECRET, authenticated_client
from sync_pipeline_tests.fakes.oauth import CLIENT_ID, CLIENT_SECRET
from sync_pipeline_tests.fakes.server import ServedApp
from sync_pipeline_tests.results import failure_message, records

SIGNING_KEY = "refresh-test-signing-key"
CONTACTS = StreamKey("salesforce", "org-1", "SalesforceContact", "base")
USERS = StreamKey("slack", "team-1", "SlackUser", "base")
PAST = "2020-01-01T00:00:00Z"


@pytest.fixture
def api(sync, instance, store) -> Iterator[httpx.Client]:
    """The HTTP API over the built-in integrations, served on 127.0.0.1."""
    app = create_app(registry=sync.registry, instance=instance, store=store, secret_key=SECRET)
    with ServedApp(app) as served:
        yield from authenticated_client(served.url)


@pytest.fixture
def salesforce_org(sync, salesforce_api, client_credentials):
    """org-1: a Salesforce connection whose session can be refreshed at the fake's login host."""
    for n, letter in enumerate("ABCDE"):
        salesforce_api.put(f"003{letter}", letter, "Doe", modified=datetime.now(timezone.utc) - timedelta(days=5 - n))
    salesforce_api.batch_size = 2
    sync.connect(
        "salesforce",
        "org-1",
        base_url="",
        config={"instance_url": salesforce_api.url, "login_url": salesforce_api.url},
        credentials={"type": "OAUTH2", "access_token": salesforce_api.token, "refresh_token": salesforce_api.oauth.refresh_token},
    )
    return sync


@pytest.fixture
def slack_team(sync, slack_api, client_credentials):
    """team-1: a Slack connection with token rotation; `expires_at` given per test."""
    for n in range(5):
        slack_api.put(f"U{n}", f"User{n}")
    slack_api.max_page = 2

    def connect(expires_at: str | None = None):
        credentials = {"type": "OAUTH2", "access_token": slack_api.token, "refresh_token": slack_api.oauth.refresh_token}
        if expires_at:
            credentials["expires_at"] = expires_at
        sync.connect("slack", "team-1", base_url=slack_api.url + "/api", credentials=credentials)
        return sync

    return connect


def test_a_salesforce_run_crossing_session_expiries_refreshes_and_gets_exactly_the_providers_records(
    salesforce_org, salesforce_api, store
):
    salesforce_api.expire_session_after = 1  # every session ends after one page: the run crosses two expiries

    result = salesforce_org.run("salesforce", "contacts", "org-1")

    assert result.success, failure_message(result)
    assert set(records(store, CONTACTS)) == set(salesforce_api.contacts)
    grants = salesforce_api.grants()
    assert len(grants) == 2
    assert all(g == {"grant_type": "refresh_token", "refresh_token": "5Aep861-refresh-0", "client_id": CLIENT_ID,
                     "client_secret": CLIENT_SECRET} for g in grants)  # fmt: skip
    stored = store.connections.get("salesforce", "org-1")
    assert stored.credentials["access_token"] == salesforce_api.token
    assert stored.credentials["refresh_token"] == "5Aep861-refresh-0", "Salesforce's refresh token does not rotate"
    assert "expires_at" not in stored.credentials, "Salesforce does not say when a session ends"


def test_a_salesforce_refresh_that_names_a_new_instance_url_moves_the_run_and_the_connection(
    salesforce_org, salesforce_api, store
):
    salesforce_api.expire_session_after = 1
    salesforce_api.move_instance()

    result = salesforce_org.run("salesforce", "contacts", "org-1")

    assert result.success, failure_message(result)
    assert set(records(store, CONTACTS)) == set(salesforce_api.contacts)
    assert salesforce_api.instance_paths == ["", "/moved", "/moved"], "pages after the refresh go to the new host"
    stored = store.connections.get("salesforce", "org-1")
    assert stored.config["instance_url"] == salesforce_api.url + "/moved"
    assert stored.config["login_url"] == salesforce_api.url


def test_a_slack_token_about_to_expire_is_rotated_before_the_first_request(slack_team, slack_api, store):
    soon = (datetime.now(timezone.utc) + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    harness = slack_team(expires_at=soon)
    spent = slack_api.oauth.refresh_token

    result = harness.run("slack", "users", "team-1")

    assert result.success, failure_message(result)
    assert slack_api.paths()[0] == "/api/oauth.v2.access", "refreshed before the token could be refused"
    assert slack_api.expired == {"xoxb-slack-token"}
    stored = store.connections.get("slack", "team-1").credentials
    assert stored["access_token"] == slack_api.token and stored["refresh_token"] == slack_api.oauth.refresh_token != spent
    expires = datetime.fromisoformat(stored["expires_at"].replace("Z", "+00:00"))
    assert timedelta(hours=11, minutes=58) < expires - datetime.now(timezone.utc) <= timedelta(hours=12)
    assert set(records(store, USERS)) == {f"U{n}" for n in range(5)}


def test_a_slack_token_expiring_mid_run_is_rotated_once_and_the_page_is_asked_again(slack_team, slack_api, store):
    harness = slack_team()  # no expires_at: only Slack's token_expired tells
    slack_api.expire_token_after = 2

    result = harness.run("slack", "users", "team-1")

    assert result.success, failure_message(result)
    assert len(slack_api.oauth.grants) == 1
    assert slack_api.paths() == ["/api/users.list", "/api/users.list", "/api/users.list", "/api/oauth.v2.access", "/api/users.list"]
    assert set(records(store, USERS)) == {f"U{n}" for n in range(5)}


def test_two_runs_needing_a_refresh_at_once_refresh_once(slack_team, slack_api, store, sync):
    slack_team(expires_at=PAST)
    slack_api.token_endpoint_delay = 1.0  # the second run asks while the first refresh is in flight
    users = sync.registry.find_sync("slack", "users")
    start = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def run(variant: str) -> None:
        connection = store.connections.get("slack", "team-1")
        keeper = CredentialKeeper(store, users.integration, connection)
        start.wait()
        try:
            outcomes[variant] = run_sync(users, connection, variant, store.records, PartitionState(), tokens=keeper)
        except Exception as error:  # reported below, with the other run's outcome
            outcomes[variant] = error

    threads = [threading.Thread(target=run, args=(variant,)) for variant in ("base", "eu")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert len(slack_api.oauth.grants) == 1, "a rotating refresh token is spent once"
    for variant in ("base", "eu"):
        assert not isinstance(outcomes[variant], Exception), outcomes[variant]
        assert outcomes[variant].counts["SlackUser"].added == 5
    assert store.connections.get("slack", "team-1").credentials["access_token"] == slack_api.token


def test_a_refused_refresh_fails_the_run_shows_in_errors_and_tells_the_app(
    salesforce_org, salesforce_api, store, api, webhook_receiver, monkeypatch
):
    monkeypatch.setenv("SYNC_PIPELINE_WEBHOOK_URL", webhook_receiver.url)
    salesforce_api.oauth.revoke()
    salesforce_api.expire_session_after = 0

    result = salesforce_org.run("salesforce", "contacts", "org-1")

    message = failure_message(result)
    assert "org-1" in message and "invalid_grant" in message and "refused to refresh" in message
    [listed] = api.get("/connections").json()["connections"]
    kinds = {error["type"]: error for error in listed["errors"]}
    assert set(kinds) == {"auth", "sync"}
    assert "invalid_grant" in kinds["auth"]["message"]
    assert kinds["sync"]["log_id"] == result.run_id

    deliver_due(store.deliveries, SIGNING_KEY)
    [(headers, body)] = webhook_receiver.received()
    assert json.loads(body) == {
        "from": "sync-pipeline", "type": "auth", "connectionId": "org-1", "providerConfigKey": "salesforce",
        "provider": "salesforce", "authMode": "OAUTH2", "environment": "prod", "operation": "refresh",
        "success": False, "error": {"type": "refresh_token_external_error", "description": kinds["auth"]["message"]},
    }  # fmt: skip
    assert headers["x-nango-hmac-sha256"] == hmac.new(SIGNING_KEY.encode(), body, hashlib.sha256).hexdigest()

    again = salesforce_org.run("salesforce", "contacts", "org-1")
    assert "invalid_grant" in failure_message(again)
    assert len(salesforce_api.grants()) == 1, "failed credentials are not tried again until new ones come"
    deliver_due(store.deliveries, SIGNING_KEY)
    assert len(webhook_receiver.received()) == 1, "the app hears of the failure once"

    # The app imports new credentials: the connection works again, and its errors are gone.
    salesforce_api.oauth.refresh_token = "5Aep861-new"
    salesforce_api.expire_session_after = None
    reimported = api.post("/connections", json={
        "provider_config_key": "salesforce", "connection_id": "org-1",
        "credentials": {"type": "OAUTH2", "access_token": "00Dxx!stale", "refresh_token": "5Aep861-new"},
        "connection_config": {"instance_url": salesforce_api.url, "login_url": salesforce_api.url},
    })  # fmt: skip
    assert reimported.status_code == 200, reimported.text
    errors = api.get("/connections").json()["connections"][0]["errors"]
    assert [e["type"] for e in errors] == ["sync"], "the auth error is gone; the sync's stays until a run succeeds"
    assert salesforce_org.run("salesforce", "contacts", "org-1").success
    assert api.get("/connections").json()["connections"][0]["errors"] == []
    assert set(records(store, CONTACTS)) == set(salesforce_api.contacts)


def test_a_github_app_mints_installation_tokens_with_a_jwt_the_provider_verifies(
    sync, github_api, store, client_credentials
):
    github_api.put_issue("acme/web", 1, "First")
    github_api.installations.add("42")
    sync.connect(
        "github", "acme", base_url=github_api.url, credentials={"type": "APP", "installation_id": "42"},
        metadata={"repositories": ["acme/web"]},
    )  # fmt: skip

    result = sync.run("github", "issues", "acme")

    assert result.success, failure_message(result)
    [claims] = github_api.verified_jwts
    assert claims["iss"] == github_api.app_id and claims["exp"] - claims["iat"] <= 600
    stored = store.connections.get("github", "acme").credentials
    assert stored["access_token"] in github_api.installation_tokens
    expires = datetime.fromisoformat(stored["expires_at"].replace("Z", "+00:00"))
    assert timedelta(minutes=58) < expires - datetime.now(timezone.utc) <= timedelta(hours=1)
    assert [r["number"] for r in records(store, StreamKey("github", "acme", "GithubIssue", "base")).values()] == [1]


def test_a_jwt_signed_with_another_key_is_refused_by_github(sync, github_api, store, client_credentials):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    store.integration_credentials.put("github", {"type": "APP", "app_id": github_api.app_id, "private_key": other})
    github_api.installations.add("42")
    github_api.put_issue("acme/web", 1, "First")
    sync.connect(
        "github", "acme", base_url=github_api.url, credentials={"type": "APP", "installation_id": "42"},
        metadata={"repositories": ["acme/web"]},
    )  # fmt: skip

    result = sync.run("github", "issues", "acme")

    assert "A JSON web token could not be decoded" in failure_message(result)
    assert github_api.verified_jwts == []
    assert "BEGIN PRIVATE KEY" not in failure_message(result)
    assert store.records.count_live(StreamKey("github", "acme", "GithubIssue", "base")) == 0


def test_get_connection_refreshes_when_forced_and_shows_the_refresh_token_only_when_asked(slack_team, slack_api, api):
    slack_team()
    query = {"provider_config_key": "slack"}

    plain = api.get("/connection/team-1", params=query).json()
    assert plain["credentials"]["access_token"] == "xoxb-slack-token" and "refresh_token" not in plain["credentials"]
    assert slack_api.oauth.grants == [], "a fresh token is not refreshed unless asked"

    forced = api.get("/connection/team-1", params={**query, "force_refresh": "true", "refresh_token": "true"}).json()
    assert forced["credentials"]["access_token"] == slack_api.token != "xoxb-slack-token"
    assert forced["credentials"]["refresh_token"] == slack_api.oauth.refresh_token
    assert len(slack_api.oauth.grants) == 1

    slack_api.oauth.revoke()
    refused = api.get("/connection/team-1", params={**query, "force_refresh": "true"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_credentials"
    assert "invalid_refresh_token" in refused.json()["error"]["message"]
    assert forced["credentials"]["refresh_token"] not in refused.text and CLIENT_SECRET not in refused.text
    [listed] = api.get("/connections").json()["connections"]
    assert [e["type"] for e in listed["errors"]] == ["auth"]


def test_no_secret_reaches_logs_dagster_events_webhooks_or_api_answers(
    salesforce_org, salesforce_api, slack_team, slack_api, github_api, app_key_pair, instance, store, api,
    webhook_receiver, monkeypatch, caplog, capfd,
):  # fmt: skip
    from dagster._serdes import serialize_value

    caplog.set_level("DEBUG")
    monkeypatch.setenv("SYNC_PIPELINE_WEBHOOK_URL", webhook_receiver.url)
    harness = slack_team(expires_at=PAST)
    slack_api.expire_token_after = 1
    github_api.put_issue("acme/web", 1, "First")
    github_api.installations.add("42")
    harness.connect("github", "acme", base_url=github_api.url, credentials={"type": "APP", "installation_id": "42"},
                    metadata={"repositories": ["acme/web"]})  # fmt: skip

    runs = [harness.run("slack", "users", "team-1"), harness.run("github", "issues", "acme")]
    assert all(run.success for run in runs)
    salesforce_api.oauth.revoke()
    salesforce_api.expire_session_after = 0
    runs.append(harness.run("salesforce", "contacts", "org-1"))
    assert not runs[-1].success
    answers = [
        api.get("/connections").text,
        api.get("/connection/org-1", params={"provider_config_key": "salesforce", "force_refresh": "true"}).text,
        api.get("/connection/team-1", params={"provider_config_key": "slack"}).text,
        api.get("/integrations/slack", params={"include": "credentials"}).text,
        api.get("/integrations/github", params={"include": "credentials"}).text,
    ]
    deliver_due(store.deliveries, SIGNING_KEY)
    assert any(json.loads(body)["type"] == "auth" for _headers, body in webhook_receiver.received())

    captured = capfd.readouterr()
    output = "\n".join([
        caplog.text, *(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records), captured.out, captured.err,
        *(serialize_value(entry) for run in runs for entry in instance.all_logs(run.run_id)),
        *(body.decode() + json.dumps(headers) for headers, body in webhook_receiver.received()),
        *answers,
    ])  # fmt: skip
    refresh_tokens = {grant["refresh_token"] for grant in slack_api.oauth.grants + salesforce_api.grants()}
    refresh_tokens |= {slack_api.oauth.refresh_token, "5Aep861-refresh-0"}
    private_key_lines = [line for line in app_key_pair[0].splitlines() if "PRIVATE KEY" not in line]
    assert len(refresh_tokens) >= 3 and len(output) > 10_000, "the run really rotated tokens and left output"
    for secret in [CLIENT_SECRET, *refresh_tokens, *private_key_lines]:
        assert secret not in output


def test_an_unreachable_token_endpoint_fails_the_run_but_not_the_credentials(salesforce_org, salesforce_api, store):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    connection = store.connections.get("salesforce", "org-1")
    salesforce_org.connect("salesforce", "org-1", base_url="", credentials=connection.credentials,
                           config={**connection.config, "login_url": f"http://127.0.0.1:{closed}"})  # fmt: skip
    salesforce_api.expire_session_after = 0

    result = salesforce_org.run("salesforce", "contacts", "org-1")

    assert "token endpoint could not be reached" in failure_message(result)
    assert store.connection_errors.get("salesforce", "org-1", "auth") is None
    assert store.deliveries.list() == [], "the app is told of refused credentials, not of a network blip"
    salesforce_org.connect("salesforce", "org-1", base_url="", credentials=connection.credentials, config=connection.config)
    salesforce_api.expire_session_after = 1
    assert salesforce_org.run("salesforce", "contacts", "org-1").success, "the next run refreshes and goes on"
