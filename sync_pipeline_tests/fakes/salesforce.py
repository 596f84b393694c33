"""Salesforce REST `queryAll`: a small SOQL reader over Contacts, query locators, array-shaped errors."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone

from starlette.requests import Request
from starlette.responses import JSONResponse

from sync_pipeline_tests.fakes.oauth import RefreshGrants
from sync_pipeline_tests.fakes.server import FakeApi

VERSION = "v60.0"
CONTACT_FIELDS = {
    "Id", "FirstName", "LastName", "Email", "Phone", "Title", "AccountId", "OwnerId",
    "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted",
}
SOQL = re.compile(
    r"^SELECT (?P<fields>[\w, ]+) FROM Contact"
    r"(?: WHERE LastModifiedDate (?P<op>>=|>) (?P<since>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z))?"
    r"(?: ORDER BY (?P<order>\w+))?$"
)


def _error(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse([{"message": message, "errorCode": code}], status_code=status)


def sf_time(moment: datetime) -> str:
    """Salesforce's own datetime format: `2024-01-15T10:30:00.000+0000`."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


class SalesforceApi(FakeApi):
    """`GET /services/data/v60.0/queryAll?q=<SOQL>`, then each `nextRecordsUrl` (`.../query/<locator>-<n>`).

    `POST /services/oauth2/token` refreshes a session (the refresh token does not rotate) and answers the
    org's `instance_url`; `move_instance()` makes that a new host (served here under `/moved`).
    `expire_session_after` ends each session after that many API pages, as an org's timeout would.
    """

    token = "00Dxx!salesforce-session"
    batch_size = 2000
    revoke_after_pages: int | None = None  # the session expires after this many pages were served
    expire_session_after: int | None = None  # each session ends after this many pages answered with it

    def __init__(self) -> None:
        super().__init__()
        self.url = ""
        self.contacts: dict[str, dict] = {}
        self.queries: list[str] = []
        self._cursors: dict[str, list[dict]] = {}
        self.oauth = RefreshGrants("5Aep861", rotates=False)
        self.instance_prefix = ""  # where the org's API lives on this server: "" or "/moved"
        self._next_prefix = ""
        self.instance_paths: list[str] = []  # the prefix of each API request served
        self._session_pages = 0

        @self.route("POST", "/services/oauth2/token")
        def token_endpoint(request: Request):
            error = self.oauth.redeem(request)
            if error is not None:
                description = {"invalid_grant": "expired access/refresh token"}.get(error, "refused")
                return JSONResponse({"error": error, "error_description": description}, status_code=400)
            self.token = f"00Dxx!session-{self.oauth.serial()}"
            self._session_pages = 0
            self.instance_prefix = self._next_prefix
            return {
                "access_token": self.token,
                "instance_url": self.url + self.instance_prefix,
                "id": "https://login.salesforce.com/id/00Dxx0000001gPL/005xx000001SwiU",
                "token_type": "Bearer",
                "issued_at": "1700000000000",
                "signature": "CMJ4l+CCaPQiKjoOEwEig9H4wqhpuLSk4J2urAe+fVg=",
            }

        for prefix in ("", "/moved"):
            self._api_routes(prefix)

    def _api_routes(self, prefix: str) -> None:
        @self.route("GET", f"{prefix}/services/data/{VERSION}/queryAll")
        def query_all(request: Request):
            if (denied := self._check_token(request)) is not None:
                return denied
            soql = request.query_params.get("q", "")
            self.queries.append(soql)
            match = SOQL.match(soql)
            if not match:
                return _error(400, f"unexpected token in: {soql[:80]}", "MALFORMED_QUERY")
            fields = [f.strip() for f in match["fields"].split(",")]
            unknown = [f for f in fields if f not in CONTACT_FIELDS]
            if unknown:
                return _error(400, f"No such column '{unknown[0]}' on entity 'Contact'.", "INVALID_FIELD")
            rows = list(self.contacts.values())
            if match["since"]:
                since = datetime.fromisoformat(match["since"].replace("Z", "+00:00"))
                keep = (lambda t: t >= since) if match["op"] == ">=" else (lambda t: t > since)
                rows = [r for r in rows if keep(datetime.fromisoformat(r["LastModifiedDate"]))]
            if match["order"]:
                rows.sort(key=lambda r: r[match["order"]])
            selected = [{"attributes": _attributes(r["Id"]), **{f: r[f] for f in fields}} for r in rows]
            locator = f"01g{uuid.uuid4().hex[:15]}"
            self._cursors[locator] = selected
            return self._page(locator, 0)

        @self.route("GET", f"{prefix}/services/data/{VERSION}/query/{{locator}}")
        def query_more(request: Request, locator: str):
            if (denied := self._check_token(request)) is not None:
                return denied
            name, _, offset = locator.rpartition("-")
            if name not in self._cursors or not offset.isdigit():
                return _error(400, "invalid query locator", "INVALID_QUERY_LOCATOR")
            return self._page(name, int(offset))

    def _check_token(self, request: Request) -> JSONResponse | None:
        served = len(self.requests) - 1
        revoked = self.revoke_after_pages is not None and served >= self.revoke_after_pages
        if self.expire_session_after is not None and self._session_pages >= self.expire_session_after:
            self.token = f"00Dxx!expired-{self.oauth.serial()}"  # the session timed out; nobody holds the new value
        if revoked or request.headers.get("authorization") != f"Bearer {self.token}":
            return _error(401, "Session expired or invalid", "INVALID_SESSION_ID")
        if not request.url.path.startswith(self.instance_prefix + "/services/"):
            return _error(400, "this org is served from another instance", "WRONG_INSTANCE")
        self._session_pages += 1
        self.instance_paths.append(self.instance_prefix)
        return None

    def move_instance(self) -> None:
        """The org moves at the next refresh: the token answer names the new instance_url, and from then on the
        old host refuses the org's calls."""
        self._next_prefix = "/moved"

    def grants(self) -> list[dict[str, str]]:
        return self.oauth.grants

    def _page(self, locator: str, offset: int) -> dict:
        rows = self._cursors[locator]
        end = offset + self.batch_size
        done = end >= len(rows)
        body = {"totalSize": len(rows), "done": done, "records": rows[offset:end]}
        if not done:
            body["nextRecordsUrl"] = f"/services/data/{VERSION}/query/{locator}-{end}"
        return body

    def reset(self) -> None:
        self.contacts.clear()
        self.queries.clear()
        self._cursors.clear()
        self.requests.clear()
        self.bodies.clear()
        self.request_times.clear()
        self._failures.clear()
        self.batch_size = 2000
        self.revoke_after_pages = None
        self.expire_session_after = None
        self.__dict__.pop("token", None)
        self.oauth = RefreshGrants("5Aep861", rotates=False)
        self.instance_prefix = self._next_prefix = ""
        self.instance_paths.clear()
        self._session_pages = 0

    def tick(self) -> str:
        """Now, to the second: Salesforce audit fields carry no milliseconds."""
        return sf_time(datetime.now(timezone.utc))

    def put(self, contact_id: str, first: str, last: str, *, modified: datetime | None = None, **fields) -> None:
        stamp = sf_time(modified) if modified else self.tick()
        previous = self.contacts.get(contact_id)
        self.contacts[contact_id] = {
            "Id": contact_id,
            "FirstName": first,
            "LastName": last,
            "Email": f"{first.lower()}.{last.lower()}@example.com",
            "Phone": None,
            "Title": None,
            "AccountId": "001000000000001AAA",
            "OwnerId": "005000000000001AAA",
            "CreatedDate": previous["CreatedDate"] if previous else stamp,
            "LastModifiedDate": stamp,
            "SystemModstamp": stamp,
            "IsDeleted": False,
            **fields,
        }

    def delete(self, contact_id: str) -> None:
        """Move to the recycle bin: queryAll still returns it, with IsDeleted true."""
        stamp = self.tick()
        self.contacts[contact_id].update(IsDeleted=True, LastModifiedDate=stamp, SystemModstamp=stamp)


def _attributes(contact_id: str) -> dict:
    return {"type": "Contact", "url": f"/services/data/{VERSION}/sobjects/Contact/{contact_id}"}
