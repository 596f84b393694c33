"""`GET /connections` pages and filters as Nango's does; `PATCH /connections/{id}` changes tags and end user."""

from __future__ import annotations

import pytest

from sync_pipeline_tests.api.conftest import assert_error, import_acme

IDS = ["acme-eu-1", "acme-us-1", "beta_eu", "beta.us", "gamma"]


@pytest.fixture
def five(client, acme):
    for n, connection_id in enumerate(IDS):
        import_acme(client, acme, connection_id, tags={"Team": "red" if n % 2 == 0 else "blue", "plan": "pro"})
    return client


def listed(client, **params) -> list[str]:
    response = client.get("/connections", params=params)
    assert response.status_code == 200, response.text
    return [c["connection_id"] for c in response.json()["connections"]]


def test_pages_of_limit_in_creation_order(five):
    assert listed(five) == IDS
    assert listed(five, limit=2) == IDS[:2]
    assert listed(five, limit=2, page=1) == IDS[2:4]
    assert listed(five, limit=2, page=2) == IDS[4:]
    assert listed(five, limit=2, page=3) == []


def test_search_tags_and_integration_filters(five):
    assert listed(five, search="EU") == ["acme-eu-1", "beta_eu"], "part of the id, any case"
    assert listed(five, search="_") == ["beta_eu"], "LIKE wildcards are taken literally"
    assert listed(five, search="%") == []
    assert listed(five, **{"tags[team]": "red"}) == ["acme-eu-1", "beta_eu", "gamma"]
    assert listed(five, **{"tags[Team]": "blue", "tags[plan]": "pro"}) == ["acme-us-1", "beta.us"], "every tag must match"
    assert listed(five, **{"tags[plan]": "free"}) == []
    assert listed(five, search="beta", **{"tags[team]": "red"}, limit=1) == ["beta_eu"]
    assert listed(five, integrationId="other,acme", connectionId="gamma") == ["gamma"]
    assert listed(five, integrationId="other") == []
    [gamma] = five.get("/connections", params={"connectionId": "gamma"}).json()["connections"]
    assert gamma["tags"] == {"team": "red", "plan": "pro"}, "tag keys are stored in lower case, as Nango does"
    assert gamma["errors"] == [] and gamma["end_user"] is None


def test_bad_list_queries_are_400s(five):
    for params in ({"limit": 0}, {"limit": 2001}, {"limit": "x"}, {"page": -1}, {"search": ""},
                   {"tags[1bad]": "x"}, {"tags[team]": ""}):  # fmt: skip
        assert_error(five.get("/connections", params=params), 400, "invalid_query_params")


def test_patch_sets_tags_and_end_user(five, store):
    end_user = {"id": "u-42", "email": "ann@example.com", "display_name": "Ann", "organization": {"id": "org-7"}}
    response = five.patch("/connections/gamma", params={"provider_config_key": "acme"},
                          json={"tags": {"Region": "eu"}, "end_user": end_user})  # fmt: skip
    assert response.status_code == 200 and response.json() == {"success": True}

    [gamma] = five.get("/connections", params={"connectionId": "gamma"}).json()["connections"]
    assert gamma["tags"] == {"region": "eu"}, "tags are replaced as a whole"
    assert gamma["end_user"] == {"id": "u-42", "email": "ann@example.com", "display_name": "Ann", "tags": None,
                                 "organization": {"id": "org-7", "display_name": None}}  # fmt: skip
    assert listed(five, endUserId="u-42") == ["gamma"]
    assert listed(five, endUserOrganizationId="org-7") == ["gamma"]
    assert listed(five, **{"tags[region]": "eu"}) == ["gamma"]
    detail = five.get("/connections/gamma", params={"provider_config_key": "acme"}).json()
    assert detail["tags"] == {"region": "eu"} and detail["end_user"]["id"] == "u-42"

    # Only what is sent changes.
    assert five.patch("/connections/gamma", params={"provider_config_key": "acme"}, json={"tags": {}}).status_code == 200
    assert store.connections.get("acme", "gamma").end_user["id"] == "u-42"
    assert store.connections.get("acme", "gamma").tags == {}


def test_bad_patches_change_nothing(five, store):
    before = store.connections.get("acme", "gamma")
    key = {"provider_config_key": "acme"}
    cases = [
        ({"tags": {"1st": "x"}}, key, 400, "invalid_body"),
        ({"tags": {f"k{n}": "v" for n in range(11)}}, key, 400, "invalid_body"),
        ({"tags": {"a": "x", "A": "y"}}, key, 400, "invalid_body"),
        ({"end_user": {"email": "no-id@example.com"}}, key, 400, "invalid_body"),
        ({"colour": "red"}, key, 400, "invalid_body"),
        ({"tags": {"a": "x"}}, {}, 400, "invalid_query_params"),
        ({"tags": {"a": "x"}}, {"provider_config_key": "nowhere"}, 404, "unknown_provider_config"),
    ]
    for body, params, status, code in cases:
        assert_error(five.patch("/connections/gamma", params=params, json=body), status, code)
    assert_error(five.patch("/connections/nobody", params=key, json={"tags": {}}), 404, "unknown_connection")
    after = store.connections.get("acme", "gamma")
    assert (after.tags, after.end_user, after.updated_at) == (before.tags, before.end_user, before.updated_at)
