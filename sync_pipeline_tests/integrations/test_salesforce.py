"""The Salesforce `contacts` sync against a fake REST API that reads the SOQL it is sent."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from sync_pipeline.store import StreamKey
from sync_pipeline_tests.results import counts, deleted_ids, failure_message, materialization_metadata, records

CONTACTS = StreamKey("salesforce", "org-1", "SalesforceContact", "base")


@pytest.fixture
def connected(sync, salesforce_api):
    def connect(metadata=None, **config):
        sync.connect(
            "salesforce",
            "org-1",
            base_url="",  # no override: the integration's own base URL, the org's instance_url, applies
            config=config or {"instance_url": salesforce_api.url},
            credentials={"type": "OAUTH2", "access_token": salesforce_api.token},
            metadata=metadata,
        )
        return sync

    return connect


def where_since(soql: str) -> datetime:
    match = re.search(r"WHERE LastModifiedDate >=? (\S+Z) ORDER BY LastModifiedDate$", soql)
    assert match, soql
    return datetime.fromisoformat(match.group(1).replace("Z", "+00:00"))


def test_initial_sync_follows_next_records_url_and_reaches_back_one_year(connected, salesforce_api, store):
    now = datetime.now(timezone.utc)
    salesforce_api.put("003A", "Ann", "Lee", modified=now - timedelta(days=300))
    salesforce_api.put("003B", "Bob", "Ray", modified=now - timedelta(days=2))
    salesforce_api.put("003C", "Cid", "Moe")
    salesforce_api.put("003OLD", "Old", "Timer", modified=now - timedelta(days=400))
    salesforce_api.batch_size = 2

    result = connected().run("salesforce", "contacts", "org-1")

    assert result.success
    assert counts(result, "SalesforceContact") == (3, 0, 0)
    contacts = records(store, CONTACTS)
    assert set(contacts) == {"003A", "003B", "003C"}, "a contact outside the backfill window is not read"
    assert contacts["003B"]["email"] == "bob.ray@example.com" and contacts["003B"]["last_name"] == "Ray"
    [soql] = salesforce_api.queries
    assert soql.startswith("SELECT Id, FirstName, LastName, Email") and "IsDeleted FROM Contact" in soql
    assert abs(where_since(soql) - (now - timedelta(days=365))) < timedelta(minutes=1)
    paths = salesforce_api.paths()
    assert paths[0] == "/services/data/v60.0/queryAll" and paths[1].startswith("/services/data/v60.0/query/")


def test_backfill_days_metadata_overrides_the_window(connected, salesforce_api, store):
    now = datetime.now(timezone.utc)
    salesforce_api.put("003A", "Ann", "Lee", modified=now - timedelta(days=40))
    salesforce_api.put("003B", "Bob", "Ray", modified=now - timedelta(days=20))

    connected(metadata={"backfill_days": 30}).run("salesforce", "contacts", "org-1")

    assert abs(where_since(salesforce_api.queries[0]) - (now - timedelta(days=30))) < timedelta(minutes=1)
    assert set(records(store, CONTACTS)) == {"003B"}


def test_second_run_reads_changes_since_the_first_and_turns_is_deleted_into_deletions(
    connected, salesforce_api, store
):
    salesforce_api.put("003A", "Ann", "Lee")
    salesforce_api.put("003B", "Bob", "Ray")
    salesforce_api.put("003C", "Cid", "Moe")
    harness = connected()
    first = harness.run("salesforce", "contacts", "org-1")
    first_started = materialization_metadata(first, "SalesforceContact").started_at

    salesforce_api.put("003B", "Bob", "Ray", Title="CTO")  # edited
    salesforce_api.delete("003C")  # to the recycle bin: queryAll returns it with IsDeleted
    salesforce_api.put("003D", "Dee", "Fox")  # added
    second = harness.run("salesforce", "contacts", "org-1")

    assert second.success
    assert materialization_metadata(second, "SalesforceContact").kind == "INCREMENTAL"
    assert counts(second, "SalesforceContact") == (1, 1, 1)
    assert where_since(salesforce_api.queries[1]) == first_started.replace(microsecond=0)
    contacts = records(store, CONTACTS)
    assert set(contacts) == {"003A", "003B", "003D"}
    assert contacts["003B"]["title"] == "CTO"
    assert deleted_ids(store, CONTACTS) == {"003C"}


def test_revoked_session_fails_the_run_with_salesforces_error_and_touches_nothing(connected, salesforce_api, store):
    salesforce_api.put("003A", "Ann", "Lee")
    harness = connected()
    harness.run("salesforce", "contacts", "org-1")
    before = store.records.last_seq(CONTACTS)
    salesforce_api.put("003A", "Ann", "Changed")
    salesforce_api.token = "expired-session"

    try:
        result = harness.run("salesforce", "contacts", "org-1")
    finally:
        del salesforce_api.token

    message = failure_message(result)
    assert "org-1" in message and "Session expired or invalid" in message and "401" in message
    assert store.records.last_seq(CONTACTS) == before
    assert records(store, CONTACTS)["003A"]["last_name"] == "Lee"


def test_a_connection_without_instance_url_fails_saying_what_to_set(connected, salesforce_api):
    result = connected(region="eu").run("salesforce", "contacts", "org-1")

    message = failure_message(result)
    assert "org-1" in message and "instance_url" in message


def test_a_run_that_fails_mid_query_resumes_from_the_last_saved_page(connected, salesforce_api, store):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    for n, letter in enumerate("ABCD"):
        salesforce_api.put(f"003{letter}", letter, "Doe", modified=now - timedelta(days=4 - n))
    salesforce_api.batch_size = 2
    salesforce_api.revoke_after_pages = 1  # the first page is saved, the second fails
    harness = connected()

    assert not harness.run("salesforce", "contacts", "org-1").success
    salesforce_api.revoke_after_pages = None
    resumed = harness.run("salesforce", "contacts", "org-1")

    assert resumed.success
    assert where_since(salesforce_api.queries[-1]) == now - timedelta(days=3), "from contact B, the last one saved"
    assert counts(resumed, "SalesforceContact") == (2, 0, 0)
    assert set(records(store, CONTACTS)) == {"003A", "003B", "003C", "003D"}
