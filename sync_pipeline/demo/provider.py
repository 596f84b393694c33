"""The demo provider: Slack `users.list`, Salesforce `queryAll` and GitHub issues, in their wire formats, over
generated data a walkthrough can change; and the app's webhook receiver (`POST /hooks`). One Starlette app,
served by uvicorn in a thread on a free 127.0.0.1 port.

Pages are small on purpose (Slack 10 members, Salesforce 15 rows, GitHub 10 issues) so that pagination shows.
"""

from __future__ import annotations

import base64
import json
import random
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

TOKEN = "demo-token"
SLACK_PAGE, SALESFORCE_PAGE, GITHUB_PAGE = 10, 15, 10
SF_VERSION = "v60.0"
SOQL_SINCE = re.compile(r"LastModifiedDate >= (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")

FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Dennis", "Radia",
         "John", "Katherine", "Linus", "Hedy", "Tim", "Shafi", "Niklaus", "Sophie", "Guido", "Anita", "Bjarne"]  # fmt: skip
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton", "Ritchie",
        "Perlman", "McCarthy", "Johnson", "Torvalds", "Lamarr", "Berners-Lee", "Goldwasser", "Wirth", "Wilson"]  # fmt: skip
ISSUE_TITLES = ["Login fails on Safari", "Dark mode contrast", "Crash on empty cart", "Slow search results",
                "Typo on pricing page", "Export to CSV", "Broken link in footer", "Retry failed payments",
                "Add SSO", "Timezone shown wrong", "Upload limit too low", "Keyboard shortcuts"]  # fmt: skip


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sf(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class DemoData:
    """What the demo provider serves; the walkthrough changes it between the two rounds of syncs."""

    slack: dict[str, dict] = field(default_factory=dict)
    contacts: dict[str, dict] = field(default_factory=dict)
    issues: dict[str, dict[int, dict]] = field(default_factory=dict)  # "owner/repo" -> number -> issue
    next_issue_id: int = 9000

    @classmethod
    def generated(cls, seed: int = 7) -> "DemoData":
        rng = random.Random(seed)
        data = cls()
        names = rng.sample([(f, last) for f in FIRST for last in LAST], 60)
        for index, (first, last) in enumerate(names[:24]):
            data.put_member(f"U{index + 1:04d}", f"{first} {last}", updated=_now() - timedelta(days=rng.randint(5, 300)))
        data.put_member("B0001", "Deploy Bot", bot=True)
        for index, (first, last) in enumerate(names[24:56]):
            data.put_contact(f"003DEMO{index + 1:08d}", first, last, modified=_now() - timedelta(days=rng.randint(2, 200)))
        for repo, count in (("acme/web", 23), ("acme/api", 12)):
            for number in range(1, count + 1):
                title = f"{rng.choice(ISSUE_TITLES)} (#{number})"
                state = "closed" if rng.random() < 0.3 else "open"
                data.put_issue(repo, number, title, state=state, updated=_now() - timedelta(days=rng.randint(1, 90)),
                               pull_request=number % 8 == 0)  # fmt: skip
        return data

    def put_member(self, member_id: str, real_name: str, *, bot: bool = False, updated: datetime | None = None) -> None:
        handle = real_name.lower().replace(" ", ".")
        self.slack[member_id] = {
            "id": member_id, "team_id": "T0DEMO", "name": handle, "deleted": False, "real_name": real_name,
            "tz": "Europe/London", "is_admin": member_id == "U0001", "is_owner": member_id == "U0001", "is_bot": bot,
            "updated": int((updated or _now()).timestamp()),
            "profile": {"real_name": real_name, "display_name": handle, "email": "" if bot else f"{handle}@acme.example",
                        "title": "", "phone": "", "image_192": f"https://avatars.example/{member_id}.png"},
        }  # fmt: skip

    def put_contact(self, contact_id: str, first: str, last: str, *, modified: datetime | None = None, **fields: Any) -> None:
        stamp = _sf(modified or _now())
        previous = self.contacts.get(contact_id)
        self.contacts[contact_id] = {
            "Id": contact_id, "FirstName": first, "LastName": last,
            "Email": f"{first.lower()}.{last.lower()}@customer.example", "Phone": None, "Title": "Engineer",
            "AccountId": "001DEMO000000001", "OwnerId": "005DEMO000000001",
            "CreatedDate": previous["CreatedDate"] if previous else stamp, "LastModifiedDate": stamp,
            "SystemModstamp": stamp, "IsDeleted": False, **fields,
        }  # fmt: skip

    def delete_contact(self, contact_id: str) -> None:
        """Into the recycle bin: `queryAll` still returns it, with IsDeleted true."""
        stamp = _sf(_now())
        self.contacts[contact_id].update(IsDeleted=True, LastModifiedDate=stamp, SystemModstamp=stamp)

    def put_issue(self, repo: str, number: int, title: str, *, state: str = "open", updated: datetime | None = None,
                  pull_request: bool = False) -> dict:  # fmt: skip
        stamp = _iso(updated or _now())
        previous = self.issues.setdefault(repo, {}).get(number)
        if previous is None:
            self.next_issue_id += 1
        issue = {
            "id": previous["id"] if previous else self.next_issue_id, "number": number, "title": title,
            "body": f"{title}: steps to reproduce...", "state": state,
            "state_reason": "completed" if state == "closed" else None, "user": {"login": "octocat"},
            "assignees": [{"login": "hubot"}], "labels": [{"name": "bug" if number % 2 else "enhancement"}],
            "comments": number % 5, "html_url": f"https://github.com/{repo}/issues/{number}",
            "created_at": previous["created_at"] if previous else stamp, "updated_at": stamp,
            "closed_at": stamp if state == "closed" else None,
        }  # fmt: skip
        if pull_request:
            issue["pull_request"] = {"url": f"https://api.github.com/repos/{repo}/pulls/{number}"}
        self.issues[repo][number] = issue
        return issue


@dataclass
class ReceivedWebhook:
    at: float
    body: dict[str, Any]


class DemoProvider:
    """The Starlette app of the demo provider and webhook receiver, over one `DemoData`."""

    def __init__(self, data: DemoData | None = None) -> None:
        self.data = data or DemoData.generated()
        self.url = ""
        self.webhooks: list[ReceivedWebhook] = []
        self.requests = 0
        self._locators: dict[str, list[dict]] = {}
        self._lock = threading.Lock()
        self.app = Starlette(routes=[
            Route("/slack/api/users.list", self.users_list, methods=["GET", "POST"]),
            Route(f"/salesforce/services/data/{SF_VERSION}/queryAll", self.query_all, methods=["GET"]),
            Route(f"/salesforce/services/data/{SF_VERSION}/query/{{locator}}", self.query_more, methods=["GET"]),
            Route("/github/repos/{owner}/{repo}/issues", self.repo_issues, methods=["GET"]),
            Route("/hooks", self.receive_webhook, methods=["POST"]),
        ])  # fmt: skip

    @staticmethod
    def _authorized(request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {TOKEN}"

    # Slack: errors are HTTP 200 with {"ok": false}; cursors are opaque base64.
    async def users_list(self, request: Request) -> JSONResponse:
        self.requests += 1
        if not self._authorized(request):
            return JSONResponse({"ok": False, "error": "invalid_auth"})
        members = sorted(self.data.slack.values(), key=lambda m: m["id"])
        cursor = request.query_params.get("cursor") or ""
        start = int(base64.b64decode(cursor).decode().removeprefix("user:")) if cursor else 0
        limit = min(int(request.query_params.get("limit") or 100), SLACK_PAGE)
        more = start + limit < len(members)
        return JSONResponse({
            "ok": True, "members": members[start : start + limit], "cache_ts": int(time.time()),
            "response_metadata": {"next_cursor": base64.b64encode(f"user:{start + limit}".encode()).decode() if more else ""},
        })  # fmt: skip

    # Salesforce: SOQL through queryAll, pages linked by nextRecordsUrl, errors as a JSON array.
    async def query_all(self, request: Request) -> JSONResponse:
        self.requests += 1
        if not self._authorized(request):
            return JSONResponse([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}], status_code=401)
        soql = request.query_params.get("q", "")
        if not soql.startswith("SELECT ") or " FROM Contact" not in soql:
            return JSONResponse([{"message": f"unexpected token: {soql[:60]}", "errorCode": "MALFORMED_QUERY"}], status_code=400)
        fields = [name.strip() for name in soql[len("SELECT ") : soql.index(" FROM ")].split(",")]
        rows = list(self.data.contacts.values())
        since = SOQL_SINCE.search(soql)
        if since:
            moment = datetime.fromisoformat(since.group(1).replace("Z", "+00:00"))
            rows = [r for r in rows if datetime.strptime(r["LastModifiedDate"], "%Y-%m-%dT%H:%M:%S.000%z") >= moment]
        rows.sort(key=lambda r: r["LastModifiedDate"])
        selected = [{"attributes": {"type": "Contact"}, **{name: row.get(name) for name in fields}} for row in rows]
        locator = f"01gDEMO{len(self._locators):06d}"
        with self._lock:
            self._locators[locator] = selected
        return JSONResponse(self._sf_page(locator, 0))

    async def query_more(self, request: Request) -> JSONResponse:
        self.requests += 1
        name, _, offset = request.path_params["locator"].rpartition("-")
        if name not in self._locators or not offset.isdigit():
            return JSONResponse([{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}], status_code=400)
        return JSONResponse(self._sf_page(name, int(offset)))

    def _sf_page(self, locator: str, offset: int) -> dict[str, Any]:
        rows = self._locators[locator]
        end = offset + SALESFORCE_PAGE
        page: dict[str, Any] = {"totalSize": len(rows), "done": end >= len(rows), "records": rows[offset:end]}
        if end < len(rows):
            page["nextRecordsUrl"] = f"/services/data/{SF_VERSION}/query/{locator}-{end}"
        return page

    # GitHub: newest update first, `since`, `per_page` and `page`, pages linked by the Link header.
    async def repo_issues(self, request: Request) -> JSONResponse:
        self.requests += 1
        if not self._authorized(request):
            return JSONResponse({"message": "Bad credentials", "status": "401"}, status_code=401)
        name = f"{request.path_params['owner']}/{request.path_params['repo']}"
        if name not in self.data.issues:
            return JSONResponse({"message": "Not Found", "status": "404"}, status_code=404)
        query = request.query_params
        rows = sorted(self.data.issues[name].values(), key=lambda i: i["updated_at"], reverse=True)
        if query.get("state", "open") != "all":
            rows = [i for i in rows if i["state"] == query.get("state", "open")]
        if query.get("since"):
            rows = [i for i in rows if i["updated_at"] >= query["since"]]
        per_page = min(int(query.get("per_page") or 30), GITHUB_PAGE)
        page = int(query.get("page") or 1)
        headers = {}
        if page * per_page < len(rows):
            params = urlencode({**{k: v for k, v in query.items() if k != "page"}, "page": page + 1})
            headers["Link"] = f'<{self.url}/github/repos/{name}/issues?{params}>; rel="next"'
        return JSONResponse(rows[(page - 1) * per_page : page * per_page], headers=headers)

    # The app's side: change webhooks from sync_pipeline.
    async def receive_webhook(self, request: Request) -> JSONResponse:
        body = await request.body()
        try:
            parsed = json.loads(body)
        except ValueError:
            return JSONResponse({"ok": False}, status_code=400)
        with self._lock:
            self.webhooks.append(ReceivedWebhook(time.monotonic(), parsed))
        return JSONResponse({"ok": True})


class Served:
    """An ASGI app served by uvicorn in a thread on a free 127.0.0.1 port."""

    def __init__(self, app: Any) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> "Served":
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the demo provider did not start within 10 s")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
