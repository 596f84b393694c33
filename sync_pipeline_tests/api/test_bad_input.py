"""Bad input sent for real to the served API: a 400 naming the problem, never a 500, and nothing stored.

Each case is one a reviewer found answering 500 (issue 14); docs/reliability.md lists them.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
from urllib.parse import urlsplit

import pytest
from sqlalchemy import update

from sync_pipeline.json_input import MAX_DEPTH
from sync_pipeline.store import PreparedRecord, StreamKey, utcnow
from sync_pipeline.store._schema import connections
from sync_pipeline_tests.acme import WEBHOOK_SECRET
from sync_pipeline_tests.api.conftest import SECRET, assert_error, import_acme, stream_headers

CONTACTS = StreamKey("acme", "conn-1", "AcmeContact")
NON_STANDARD_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"]


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def save(store, key: StreamKey, *ids: str) -> None:
    batch = []
    for record_id in ids:
        payload = json.dumps({"id": record_id, "name": record_id})
        batch.append(PreparedRecord(record_id, payload, hashlib.blake2b(payload.encode(), digest_size=16).hexdigest()))
    store.records.save(key, batch, utcnow())


# -- JSON bodies --------------------------------------------------------------------------------


@pytest.mark.parametrize("number", NON_STANDARD_NUMBERS)
def test_non_standard_numbers_in_metadata_are_refused_and_never_stored(client, acme, store, number):
    body = ('{"provider_config_key": "acme", "connection_id": "n", "credentials": {"type": "NONE"}, '
            f'"metadata": {{"x": {number}}}}}')
    error = assert_error(client.post("/connections", content=body, headers={"Content-Type": "application/json"}),
                         400, "invalid_body")
    assert number.lstrip("-") in error["message"] or "too large" in error["message"]
    assert store.connections.summaries() == []

    import_acme(client, acme, metadata={"x": 1})
    for method, path in (("PATCH", "/connections/metadata"), ("POST", "/connection/metadata")):
        body = f'{{"provider_config_key": "acme", "connection_id": "conn-1", "metadata": {{"x": {number}}}}}'
        assert_error(client.request(method, path, content=body), 400, "invalid_body")
    assert store.connections.get("acme", "conn-1").metadata == {"x": 1}
    assert client.get("/connections").status_code == 200


def test_a_nan_stored_by_an_earlier_version_does_not_break_listing(client, acme, store):
    import_acme(client, acme, metadata={"team": "a"})
    import_acme(client, acme, "conn-2")
    with store.engine.begin() as conn:  # what json.dumps wrote before NaN was refused
        conn.execute(update(connections).where(connections.c.connection_id == "conn-1")
                     .values(metadata='{"team": "a", "score": NaN, "top": Infinity}'))

    response = client.get("/connections")

    assert response.status_code == 200, response.text
    listed = {c["connection_id"]: c["metadata"] for c in response.json()["connections"]}
    assert listed == {"conn-1": {"team": "a", "score": None, "top": None}, "conn-2": {}}
    got = client.get("/connections/conn-1", params={"provider_config_key": "acme"})
    assert got.status_code == 200 and got.json()["metadata"]["score"] is None


def test_a_lone_surrogate_is_refused(client, acme, store):
    import_acme(client, acme)
    body = '{"provider_config_key": "acme", "connection_id": "conn-1", "metadata": {"x": "\\ud800"}}'
    error = assert_error(client.patch("/connections/metadata", content=body), 400, "invalid_body")
    assert "surrogate" in error["message"]
    paired = '{"provider_config_key": "acme", "connection_id": "conn-1", "metadata": {"x": "\\ud83d\\ude00"}}'
    assert client.patch("/connections/metadata", content=paired).status_code == 200
    assert store.connections.get("acme", "conn-1").metadata == {"x": "\U0001F600"}


ROUTES_WITH_BODIES = [
    ("POST", "/connections", True),
    ("PATCH", "/connections/metadata", True),
    ("POST", "/sync/trigger", True),
    ("PUT", "/sync/update-connection-frequency", True),
    ("PATCH", "/records/prune", True),
    ("POST", "/webhook/acme", False),  # a provider's webhook: no bearer key, its own secret
]


@pytest.mark.parametrize(("method", "path", "auth"), ROUTES_WITH_BODIES)
def test_a_body_nested_2000_deep_is_a_400_and_the_connection_stays_open(served, method, path, auth):
    url = urlsplit(served.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    headers = {"Content-Type": "application/json", "X-Acme-Secret": WEBHOOK_SECRET, **stream_headers()}
    if auth:
        headers["Authorization"] = f"Bearer {SECRET}"
    try:
        conn.request(method, path, body=_nested(2000), headers=headers)
        response = conn.getresponse()
        answer = json.loads(response.read())
        assert response.status == 400, answer
        assert answer["error"]["code"] == "invalid_body" and "100 levels" in answer["error"]["message"]
        socket_before = conn.sock
        assert socket_before is not None, "the server closed the keep-alive connection"
        conn.request("GET", "/openapi.json", headers={"Authorization": f"Bearer {SECRET}"})
        again = conn.getresponse()
        again.read()
        assert again.status == 200 and conn.sock is socket_before
    finally:
        conn.close()


def test_nesting_up_to_the_limit_is_accepted_and_one_more_level_is_refused(client, acme, store):
    import_acme(client, acme)

    def metadata(depth: int) -> str:  # the body object and `metadata` are two levels already
        return ('{"provider_config_key": "acme", "connection_id": "conn-1", "metadata": {"x": '
                + _nested(depth - 2) + "}}")

    assert client.post("/connections/metadata", content=metadata(MAX_DEPTH)).status_code == 201
    error = assert_error(client.post("/connections/metadata", content=metadata(MAX_DEPTH + 1)), 400, "invalid_body")
    assert str(MAX_DEPTH) in error["message"]


# -- cursors ------------------------------------------------------------------------------------


@pytest.fixture
def two_streams(client, acme, store):
    """conn-1 and conn-2, each with contacts; conn-1 also with a lead and a variant of the directory sync."""
    import_acme(client, acme)
    import_acme(client, acme, "conn-2")
    save(store, CONTACTS, "a", "b")
    save(store, StreamKey("acme", "conn-2", "AcmeContact"), "x", "y", "z")
    save(store, StreamKey("acme", "conn-1", "AcmeLead"), "l1", "l2", "l3")
    assert client.post("/sync/directory/variant/v1", json={"provider_config_key": "acme", "connection_id": "conn-1"}).status_code == 200
    save(store, StreamKey("acme", "conn-1", "AcmeEmail", "v1"), "e1", "e2", "e3")
    save(store, StreamKey("acme", "conn-1", "AcmeEmail"), "e1", "e2", "e3")


def page(client, model="AcmeContact", connection="conn-1", **params):
    return client.get("/records", params={"model": model, **params}, headers=stream_headers(connection))


@pytest.mark.parametrize("cursor", ["c3AxOsKy", _b64("sp1:" + "0" * 5000), _b64("sp1:9223372036854775808"),
                                    _b64("sp2:1:000000000000"), "x" * 10_000, "%00"])
def test_garbage_cursors_are_a_400(client, two_streams, cursor):
    error = assert_error(page(client, cursor=cursor), 400, "invalid_query_params")
    assert error["errors"][0]["path"] == ["cursor"]


def test_a_cursor_is_refused_by_every_other_connection_model_and_variant(client, two_streams):
    [first, _] = page(client).json()["records"]
    cursor = first["_nango_metadata"]["cursor"]
    assert [r["id"] for r in page(client, cursor=cursor).json()["records"]] == ["b"]  # its own stream reads it

    elsewhere = [
        page(client, connection="conn-2", cursor=cursor),
        page(client, model="AcmeLead", cursor=cursor),
        page(client, model="AcmeEmail", variant="v1", cursor=cursor),
    ]
    for response in elsewhere:
        error = assert_error(response, 400, "invalid_query_params")
        assert error["errors"][0]["code"] == "foreign_cursor"
    email = page(client, model="AcmeEmail").json()["records"][0]["_nango_metadata"]["cursor"]
    assert_error(page(client, model="AcmeEmail", variant="v1", cursor=email), 400, "invalid_query_params")

    prune = {"model": "AcmeContact", "until_cursor": cursor}
    assert_error(client.patch("/records/prune", json=prune, headers=stream_headers("conn-2")), 400, "invalid_body")
    assert client.patch("/records/prune", json=prune, headers=stream_headers()).json() == {"count": 1, "has_more": False}


def test_next_cursor_and_old_unbound_cursors_keep_working(client, two_streams):
    first = page(client, connection="conn-2", limit=1).json()
    following = page(client, connection="conn-2", cursor=first["next_cursor"]).json()["records"]
    assert [r["id"] for r in following] == ["y", "z"]
    seq = 1  # x is conn-2's first change: a cursor handed out before cursors were bound
    legacy = page(client, connection="conn-2", cursor=_b64(f"sp1:{seq}")).json()["records"]
    assert [r["id"] for r in legacy] == ["y", "z"]


def test_a_cursor_from_before_the_connection_was_deleted_is_refused(client, acme, store, two_streams):
    cursor = page(client, connection="conn-2").json()["records"][-1]["_nango_metadata"]["cursor"]
    assert client.delete("/connections/conn-2", params={"provider_config_key": "acme"}).status_code == 200
    import_acme(client, acme, "conn-2")
    save(store, StreamKey("acme", "conn-2", "AcmeContact"), "new")

    error = assert_error(page(client, connection="conn-2", cursor=cursor), 400, "invalid_query_params")
    assert "deleted" in error["message"]
    assert [r["id"] for r in page(client, connection="conn-2").json()["records"]] == ["new"]


# -- dates, frequencies, ids --------------------------------------------------------------------


@pytest.mark.parametrize("moment", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
@pytest.mark.parametrize("name", ["modified_after", "delta"])
def test_moments_outside_the_utc_calendar_are_a_400(client, two_streams, name, moment):
    error = assert_error(page(client, **{name: moment}), 400, "invalid_query_params")
    assert error["errors"][0]["path"] == [name]


def test_early_and_late_moments_that_fit_filter_correctly(client, two_streams):
    assert [r["id"] for r in page(client, modified_after="0999-01-01T00:00:00Z").json()["records"]] == ["a", "b"]
    assert page(client, modified_after="9999-12-31T23:59:59Z").json()["records"] == []


@pytest.mark.parametrize("frequency", ["every 1000000 weeks", "every 100000 weeks", "every 366 days",
                                       "every " + "9" * 400 + " weeks"])
def test_frequencies_past_a_year_are_a_400(client, acme, store, frequency):
    import_acme(client, acme)
    body = {"sync_name": "contacts", "provider_config_key": "acme", "connection_id": "conn-1", "frequency": frequency}
    error = assert_error(client.put("/sync/update-connection-frequency", json=body), 400, "invalid_body")
    assert "365 days" in error["message"]
    assert store.partitions.get("acme", "contacts", "conn-1::base").frequency_seconds is None

    response = client.put("/sync/update-connection-frequency", json={**body, "frequency": "every 365 days"})
    assert response.json() == {"frequency": "every 365 days"}


@pytest.mark.parametrize(("path", "params", "where"), [
    ("/connections", {"connectionId": "a\x00b"}, "invalid_query_params"),
    ("/connections", {"integrationId": "acme\x00"}, "invalid_query_params"),
    ("/records", {"model": "AcmeContact", "ids": ["ok", "a\x00"]}, "invalid_query_params"),
    ("/sync/status", {"syncs": "contacts\x00", "provider_config_key": "acme"}, "invalid_query_params"),
    ("/connections/a%00b", {"provider_config_key": "acme"}, "invalid_uri_params"),
])
def test_a_nul_byte_is_a_400(client, acme, path, params, where):
    import_acme(client, acme)
    error = assert_error(client.get(path, params=params, headers=stream_headers()), 400, where)
    assert "NUL" in error["message"]


@pytest.mark.parametrize("connection_id", [".", ".."])
def test_dot_connection_ids_are_refused(client, store, connection_id):
    body = {"provider_config_key": "acme", "connection_id": connection_id, "credentials": {"type": "NONE"}}
    error = assert_error(client.post("/connections", json=body), 400, "invalid_body")
    assert "URL path" in error["message"]
    assert client.post("/connections", json={**body, "connection_id": "a.b"}).status_code == 200
    assert [c.connection_id for c in store.connections.summaries()] == ["a.b"]
