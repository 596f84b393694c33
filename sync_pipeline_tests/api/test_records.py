"""The records API end to end: import a connection, run its sync, page with the cursor, receive exactly the changes."""

from __future__ import annotations

import pytest

from sync_pipeline.store import StreamKey
from sync_pipeline_tests.api.conftest import assert_error, import_acme, stream_headers


def read_all(client, model="AcmeContact", limit=2, cursor=None, **params):
    """Every page after `cursor`; returns the records and the cursor of the last one."""
    records = []
    while True:
        query = {"model": model, "limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        response = client.get("/records", params=query, headers=stream_headers())
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["records"]) <= limit
        records += page["records"]
        if page["records"]:
            cursor = page["records"][-1]["_nango_metadata"]["cursor"]
        if page["next_cursor"] is None:
            return records, cursor
        assert page["next_cursor"] == cursor


@pytest.fixture
def synced(client, acme, harness):
    """conn-1 imported over HTTP, with five contacts synced."""
    for n in range(5):
        acme.put(f"c{n}", f"Name{n}")
    import_acme(client, acme)
    assert harness.run("acme", "contacts", "conn-1").success
    return harness


def test_pages_then_exactly_the_changes_after_the_stored_cursor(client, acme, synced):
    records, cursor = read_all(client)
    assert [r["id"] for r in records] == ["c0", "c1", "c2", "c3", "c4"]
    first = records[0]
    assert first["name"] == "Name0" and first["email"] == "name0@example.com"
    meta = first["_nango_metadata"]
    assert meta["last_action"] == "ADDED" and meta["deleted_at"] is None and meta["pruned_at"] is None
    assert set(meta) == {"first_seen_at", "last_modified_at", "last_action", "deleted_at", "pruned_at", "cursor"}

    acme.put("c1", "Renamed")
    acme.put("c9", "New")
    del acme.contacts["c3"]
    assert synced.run("acme", "contacts", "conn-1").success

    changes, cursor = read_all(client, cursor=cursor)
    assert {(r["id"], r["_nango_metadata"]["last_action"]) for r in changes} == {
        ("c1", "UPDATED"), ("c9", "ADDED"), ("c3", "DELETED")
    }
    assert len(changes) == 3
    assert next(r for r in changes if r["id"] == "c3")["_nango_metadata"]["deleted_at"] is not None
    again, _ = read_all(client, cursor=cursor)
    assert again == []


@pytest.mark.parametrize(
    "value, expected",
    [
        ("added", {"c9"}),
        ("UPDATED", {"c1"}),
        ("deleted", {"c3"}),
        ("added,deleted", {"c9", "c3"}),
        ("Updated,ADDED", {"c1", "c9"}),
        (" deleted , added ", {"c9", "c3"}),
    ],
)
def test_filter(client, acme, synced, value, expected):
    _, cursor = read_all(client, limit=100)
    acme.put("c1", "Renamed")
    acme.put("c9", "New")
    del acme.contacts["c3"]
    assert synced.run("acme", "contacts", "conn-1").success
    records, _ = read_all(client, filter=value, limit=1, cursor=cursor)
    assert {r["id"] for r in records} == expected
    everything_added, _ = read_all(client, filter="added", limit=100)
    assert {r["id"] for r in everything_added} == {"c0", "c2", "c4", "c9"}


def test_modified_after_delta_and_ids(client, acme, synced):
    records, _ = read_all(client, limit=100)
    middle = records[2]["_nango_metadata"]["last_modified_at"]
    acme.put("c1", "Renamed")
    assert synced.run("acme", "contacts", "conn-1").success
    updated = read_all(client, limit=100)[0][-1]["_nango_metadata"]["last_modified_at"]
    assert updated > middle
    for name in ("modified_after", "delta"):
        got, _ = read_all(client, limit=100, **{name: updated})
        assert [r["id"] for r in got] == ["c1"]
    # A zone offset is read as such: the same moment written in another zone selects the same records.
    got, _ = read_all(client, limit=100, modified_after=updated.replace("Z", "+00:00"))
    assert [r["id"] for r in got] == ["c1"]
    response = client.get("/records", params=[("model", "AcmeContact"), ("ids", "c4"), ("ids", "c0"), ("ids", "zz")],
                          headers=stream_headers())
    assert sorted(r["id"] for r in response.json()["records"]) == ["c0", "c4"]


def test_integer_ids_come_back_as_strings(client, acme, harness, store):
    import_acme(client, acme)
    from sync_pipeline.sdk.context import SyncContext  # noqa: F401  (the save path the syncs use)
    from sync_pipeline.store import PreparedRecord, utcnow

    key = StreamKey("acme", "conn-1", "AcmeContact")
    store.records.save(key, [PreparedRecord("7", '{"name":"n","id":7}', "h")], utcnow())
    record = client.get("/records", params={"model": "AcmeContact"}, headers=stream_headers()).json()["records"][0]
    assert record["id"] == "7" and record["name"] == "n"


def test_prune_keeps_metadata(client, acme, synced):
    records, cursor = read_all(client, limit=100)
    second = records[1]["_nango_metadata"]["cursor"]
    response = client.patch("/records/prune", headers=stream_headers(),
                            json={"model": "AcmeContact", "until_cursor": second, "limit": 1})
    assert response.json() == {"count": 1, "has_more": True}
    response = client.patch("/records/prune", headers=stream_headers(), json={"model": "AcmeContact", "until_cursor": second})
    assert response.json() == {"count": 1, "has_more": False}
    after, _ = read_all(client, limit=100)
    assert after[0] == {"id": "c0", "_nango_metadata": after[0]["_nango_metadata"]}
    assert after[0]["_nango_metadata"]["pruned_at"] is not None
    assert after[2]["name"] == "Name2"


def test_bad_requests_are_400s_and_change_nothing(client, acme, synced, store):
    before, _ = read_all(client, limit=100)
    seq = store.records.last_seq(StreamKey("acme", "conn-1", "AcmeContact"))
    ok = {"model": "AcmeContact"}
    cases = [
        ({**ok, "colour": "red"}, stream_headers(), 400, "invalid_query_params"),
        ({"model": "contacts"}, stream_headers(), 400, "invalid_query_params"),
        ({}, stream_headers(), 400, "invalid_query_params"),
        ({**ok, "limit": 0}, stream_headers(), 400, "invalid_query_params"),
        ({**ok, "limit": 10001}, stream_headers(), 400, "invalid_query_params"),
        ({**ok, "limit": "many"}, stream_headers(), 400, "invalid_query_params"),
        ({**ok, "filter": "created"}, stream_headers(), 400, "invalid_query_params"),
        ({**ok, "filter": "added,updated,deleted"}, stream_headers(), 400, "invalid_query_params"),
        ({**ok, "modified_after": "yesterday"}, stream_headers(), 400, "invalid_query_params"),
        ({**ok, "cursor": "not-a-cursor!"}, stream_headers(), 400, "invalid_query_params"),
        ({**ok, "cursor": "c3AxOmFiYw"}, stream_headers(), 400, "invalid_query_params"),  # "sp1:abc"
        ({**ok, "variant": "bad variant"}, stream_headers(), 400, "invalid_query_params"),
        ([("model", "AcmeContact")] + [("ids", str(n)) for n in range(101)], stream_headers(), 400, "invalid_query_params"),
        (ok, {"Provider-Config-Key": "acme"}, 400, "invalid_headers"),
        (ok, {"Connection-Id": "conn-1"}, 400, "invalid_headers"),
        (ok, stream_headers("nobody"), 404, "unknown_connection"),
        (ok, stream_headers(integration="nowhere"), 404, "unknown_provider_config"),
        ({"model": "Unknown"}, stream_headers(), 404, "not_found"),
    ]
    for params, headers, status, code in cases:
        error = assert_error(client.get("/records", params=params, headers=headers), status, code)
        if status == 400:
            assert error["errors"] and {"code", "message", "path"} <= set(error["errors"][0])
    assert_error(client.patch("/records/prune", headers=stream_headers(), json={"model": "AcmeContact", "until_cursor": "x!"}),
                 400, "invalid_body")
    assert_error(client.patch("/records/prune", headers=stream_headers(), content=b"{nope"), 400, "invalid_body")
    assert store.records.last_seq(StreamKey("acme", "conn-1", "AcmeContact")) == seq
    assert read_all(client, limit=100)[0] == before


def test_nango_node_client_request_shapes(client, acme, synced, served):
    """`GET /records/?model=...` with the Node client's header casing and its extra headers."""
    import httpx

    headers = {
        "authorization": client.headers["Authorization"],
        "connection-id": "conn-1",
        "provider-config-key": "acme",
        "Nango-Is-Sync": "false",
        "Nango-Is-Script": "false",
        "Nango-Is-Dry-Run": "false",
        "user-agent": "nango-node-client/0.42.0",
    }
    response = httpx.get(f"{served.url}/records/?model=AcmeContact&limit=2&filter=added", headers=headers)
    assert response.status_code == 200, response.text
    page = response.json()
    assert len(page["records"]) == 2 and page["next_cursor"]
    response = httpx.get(f"{served.url}/records/?model=AcmeContact&cursor={page['next_cursor']}", headers=headers)
    assert [r["id"] for r in response.json()["records"]] == ["c2", "c3", "c4"]
