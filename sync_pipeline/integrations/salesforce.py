"""Salesforce: contacts changed since the last run, deletions included, through the REST `queryAll` resource."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel

from sync_pipeline.sdk import Connection, Integration, NextUrlPagination, OAuthRefresh, SyncContext, SyncError, no_expiry

API_VERSION = "v60.0"


def instance_url(connection: Connection) -> str:
    """Each Salesforce org has its own host: the `instance_url` its OAuth token response gave."""
    url = connection.config.get("instance_url")
    if not url:
        raise SyncError(
            f"salesforce connection {connection.connection_id!r} has no connection_config.instance_url "
            "(e.g. https://acme.my.salesforce.com): set it, or connection_config.base_url"
        )
    return str(url)


def token_url(connection: Connection) -> str:
    """The org's login host (`connection_config.login_url`: a sandbox's test.salesforce.com, a My Domain)."""
    login = str(connection.config.get("login_url") or "https://login.salesforce.com").rstrip("/")
    return f"{login}/services/oauth2/token"


def new_instance_url(answer: dict[str, Any]) -> dict[str, Any]:
    return {"instance_url": answer["instance_url"]} if answer.get("instance_url") else {}


salesforce = Integration(
    "salesforce",
    base_url=instance_url,
    # The answer says nothing of the session's life (the org's timeout setting decides): a session is
    # refreshed when the API answers 401 INVALID_SESSION_ID. It carries the org's instance_url, which may move.
    refresh=OAuthRefresh(token_url=token_url, read_expiry=no_expiry, config_from=new_instance_url),
    description="Salesforce CRM contacts",
)

# queryAll (not query) also returns rows in the recycle bin, flagged IsDeleted: that is how deletions arrive.
QUERY_ALL = f"/services/data/{API_VERSION}/queryAll"
PAGES = NextUrlPagination(next_url_path="nextRecordsUrl")

# Model field -> Contact field; the SOQL selects exactly these (plus IsDeleted).
FIELDS = {
    "id": "Id",
    "first_name": "FirstName",
    "last_name": "LastName",
    "email": "Email",
    "phone": "Phone",
    "title": "Title",
    "account_id": "AccountId",
    "owner_id": "OwnerId",
    "created_date": "CreatedDate",
    "last_modified_date": "LastModifiedDate",
}


class SalesforceContact(BaseModel):
    id: str
    first_name: str | None = None
    last_name: str
    email: str | None = None
    phone: str | None = None
    title: str | None = None
    account_id: str | None = None
    owner_id: str | None = None
    created_date: datetime
    last_modified_date: datetime


def soql_datetime(moment: datetime) -> str:
    """A SOQL dateTime literal: `2024-01-01T00:00:00Z`, unquoted."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def contacts_query(since: datetime) -> str:
    # `>=`, not `>`: LastModifiedDate has whole seconds, so a contact changed later in the very second
    # the last run started carries that second; re-reading one unchanged contact is no change.
    return (
        f"SELECT {', '.join(FIELDS.values())}, IsDeleted FROM Contact "
        f"WHERE LastModifiedDate >= {soql_datetime(since)} ORDER BY LastModifiedDate"
    )


def to_contact(row: dict[str, Any]) -> dict[str, Any]:
    return {field: row.get(column) for field, column in FIELDS.items()}


@salesforce.sync(
    models=[SalesforceContact], sync_type="incremental", frequency="every hour", backfill=timedelta(days=365)
)
def contacts(ctx: SyncContext) -> None:
    """Contacts modified since the last run (the backfill window on the first); deleted ones become deletions."""
    # A query locator (nextRecordsUrl) expires within minutes, so a crashed run resumes from the
    # LastModifiedDate of the last page it saved instead.
    resume = (ctx.get_checkpoint() or {}).get("last_modified")
    since = datetime.fromisoformat(str(resume)) if resume else ctx.sync_since
    if since is None:  # pragma: no cover - the sync declares a backfill window
        raise SyncError("salesforce contacts needs a start date")
    for page in ctx.paginate(QUERY_ALL, PAGES, params={"q": contacts_query(since)}, data_path="records"):
        ctx.batch_save([to_contact(row) for row in page if not row.get("IsDeleted")], SalesforceContact)
        ctx.batch_delete([row["Id"] for row in page if row.get("IsDeleted")], SalesforceContact)
        if page.next and page:
            ctx.save_checkpoint({"last_modified": page[-1]["LastModifiedDate"]})
    ctx.clear_checkpoint()
