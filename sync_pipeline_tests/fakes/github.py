"""GitHub REST `GET /repos/{owner}/{repo}/issues`: Link-header pages, `since`, pull requests mixed in."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse

from sync_pipeline_tests.fakes.server import FakeApi

DOCS = "https://docs.github.com/rest"


def gh_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class GithubApi(FakeApi):
    """Issues per repository; pages of `per_page` (max 100) linked by `Link: <...>; rel="next"`.

    A GitHub App: `POST /app/installations/{id}/access_tokens` verifies the app's JWT (RS256) with the app's
    public key (`app_public_key`, PEM) and mints a one-hour installation token the issues API accepts.
    """

    token = "ghp_github-token"
    max_per_page = 100
    revoke_after_pages: int | None = None  # the token stops working after this many pages were served
    app_id = "123456"

    def __init__(self) -> None:
        super().__init__()
        self.url = ""
        self.repos: dict[str, dict[int, dict]] = {}  # "owner/repo" -> number -> issue
        self._repo_ids: dict[str, int] = {}
        self._next_id = 1000
        self.app_public_key: str | None = None
        self.installations: set[str] = set()
        self.installation_tokens: dict[str, datetime] = {}  # token -> expiry
        self.verified_jwts: list[dict] = []  # the claims of every app JWT accepted
        self._serial = itertools.count(1)

        @self.route("POST", "/app/installations/{installation_id}/access_tokens")
        def access_tokens(request: Request, installation_id: str):
            claims = self._verify_app_jwt(request.headers.get("authorization") or "")
            if claims is None:
                body = {"message": "A JSON web token could not be decoded", "documentation_url": DOCS, "status": "401"}
                return JSONResponse(body, status_code=401)
            if installation_id not in self.installations:
                return JSONResponse({"message": "Not Found", "documentation_url": DOCS, "status": "404"}, status_code=404)
            self.verified_jwts.append(claims)
            token = f"ghs_installation{next(self._serial)}"
            expires = datetime.now(timezone.utc) + timedelta(hours=1)
            self.installation_tokens[token] = expires
            body = {"token": token, "expires_at": gh_time(expires), "permissions": {"issues": "read"},
                    "repository_selection": "all"}  # fmt: skip
            return JSONResponse(body, status_code=201)

        @self.route("GET", "/repos/{owner}/{repo}/issues")
        def by_name(request: Request, owner: str, repo: str):
            return self._issues(request, f"{owner}/{repo}")

        @self.route("GET", "/repositories/{repo_id}/issues")
        def by_id(request: Request, repo_id: str):  # where GitHub's Link headers point
            name = next((n for n, i in self._repo_ids.items() if str(i) == repo_id), None)
            return self._issues(request, name)

    def _verify_app_jwt(self, authorization: str) -> dict | None:
        """The claims of a valid app JWT: signed RS256 by the app's key, issued by the app, at most 10 minutes long."""
        if self.app_public_key is None or not authorization.startswith("Bearer "):
            return None
        try:
            claims = jwt.decode(
                authorization.removeprefix("Bearer "), self.app_public_key, algorithms=["RS256"],
                options={"require": ["iat", "exp", "iss"]}, leeway=60,
            )  # fmt: skip
        except jwt.PyJWTError:
            return None
        if str(claims["iss"]) != self.app_id or claims["exp"] - claims["iat"] > 600:
            return None
        return claims

    def _authorized(self, authorization: str) -> bool:
        if authorization == f"Bearer {self.token}":
            return True
        expiry = self.installation_tokens.get(authorization.removeprefix("Bearer "))
        return expiry is not None and expiry > datetime.now(timezone.utc)

    def _issues(self, request: Request, name: str | None):
        served = len(self.requests) - 1
        revoked = self.revoke_after_pages is not None and served >= self.revoke_after_pages
        if revoked or not self._authorized(request.headers.get("authorization") or ""):
            body = {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"}
            return JSONResponse(body, status_code=401)
        if name not in self.repos:
            return JSONResponse({"message": "Not Found", "documentation_url": DOCS, "status": "404"}, status_code=404)
        query = request.query_params
        state = query.get("state", "open")
        rows = sorted(self.repos[name].values(), key=lambda i: i["updated_at"], reverse=True)
        if state != "all":
            rows = [i for i in rows if i["state"] == state]
        if query.get("since"):
            rows = [i for i in rows if i["updated_at"] >= query["since"]]
        per_page = min(int(query.get("per_page") or 30), self.max_per_page)
        page = int(query.get("page") or 1)
        chunk = rows[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(rows):
            params = {k: v for k, v in query.items() if k != "page"}
            link = f"{self.url}/repositories/{self._repo_ids[name]}/issues?{urlencode({**params, 'page': page + 1})}"
            headers["Link"] = f'<{link}>; rel="next"'
        return JSONResponse(chunk, headers=headers)

    def reset(self) -> None:
        self.repos.clear()
        self._repo_ids.clear()
        self.requests.clear()
        self.bodies.clear()
        self.request_times.clear()
        self._failures.clear()
        self.max_per_page = 100
        self.revoke_after_pages = None
        self.app_public_key = None
        self.installations.clear()
        self.installation_tokens.clear()
        self.verified_jwts.clear()

    def tick(self) -> str:
        return gh_time(datetime.now(timezone.utc))

    def add_repo(self, name: str) -> None:
        self.repos.setdefault(name, {})
        self._repo_ids.setdefault(name, 500 + len(self._repo_ids))

    def put_issue(self, repo: str, number: int, title: str, *, state: str = "open", pull_request: bool = False) -> dict:
        self.add_repo(repo)
        stamp = self.tick()
        previous = self.repos[repo].get(number)
        if previous is None:
            self._next_id += 1
        owner, name = repo.split("/")
        issue = {
            "id": previous["id"] if previous else self._next_id,
            "node_id": f"I_kw{number}",
            "number": number,
            "title": title,
            "body": f"Body of {title}",
            "state": state,
            "state_reason": "completed" if state == "closed" else None,
            "user": {"login": "octocat", "id": 1},
            "assignees": [{"login": "hubot", "id": 2}],
            "labels": [{"id": 7, "name": "bug", "color": "d73a4a"}],
            "comments": 0,
            "html_url": f"https://github.com/{repo}/issues/{number}",
            "repository_url": f"https://api.github.com/repos/{owner}/{name}",
            "created_at": previous["created_at"] if previous else stamp,
            "updated_at": stamp,
            "closed_at": stamp if state == "closed" else None,
        }
        if pull_request:
            issue["pull_request"] = {"url": f"https://api.github.com/repos/{repo}/pulls/{number}"}
        self.repos[repo][number] = issue
        return issue


def issues_event(action: str, issue: dict, repo: str) -> bytes:
    """The body GitHub POSTs for an `issues` event."""
    owner, name = repo.split("/")
    return json.dumps(
        {
            "action": action,
            "issue": issue,
            "repository": {"id": 500, "name": name, "full_name": repo, "owner": {"login": owner}},
            "sender": {"login": "octocat"},
        }
    ).encode()


def signed_headers(body: bytes, secret: str, event: str = "issues") -> dict[str, str]:
    """The headers of a GitHub webhook delivery signed with `secret`."""
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "X-Hub-Signature-256": f"sha256={signature}",
        "Content-Type": "application/json",
    }
