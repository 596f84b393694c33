"""Slack's Web API `users.list`: cursor pages, `{"ok": false}` errors at HTTP 200, a Bearer bot token."""

from __future__ import annotations

import base64
import time

from starlette.requests import Request

from sync_pipeline_tests.fakes.oauth import RefreshGrants
from sync_pipeline_tests.fakes.server import FakeApi

TOKEN_LIFETIME = 43200  # 12 hours, as Slack's rotating tokens live


class SlackApi(FakeApi):
    """`GET /api/users.list?limit=&cursor=` -> `{"ok": true, "members": [...], "response_metadata": {...}}`.

    `POST /api/oauth.v2.access` with `grant_type=refresh_token` rotates (token rotation): a new access token
    and a new refresh token; the old refresh token answers `invalid_refresh_token`. `expire_token_after`
    ends each access token after that many pages; an expired token answers `token_expired`.
    """

    token = "xoxb-slack-token"
    max_page = 1000  # Slack may return fewer members than `limit` asks for
    expire_token_after: int | None = None
    token_lifetime = TOKEN_LIFETIME
    token_endpoint_delay = 0.0  # seconds the token endpoint takes to answer
    page_delay = 0.0  # seconds each users.list page takes to answer (a slow provider: a run to kill half way)

    def __init__(self) -> None:
        super().__init__()
        self.members: dict[str, dict] = {}
        self.oauth = RefreshGrants("xoxe-1", rotates=True)
        self.expired: set[str] = set()
        self._token_pages = 0

        @self.route("POST", "/api/oauth.v2.access")
        def oauth_access(request: Request):
            time.sleep(self.token_endpoint_delay)
            error = self.oauth.redeem(request)
            if error is not None:
                # Slack's names for a spent or revoked refresh token, at HTTP 200 like its other errors.
                return {"ok": False, "error": "invalid_refresh_token" if error == "invalid_grant" else error}
            self.expired.add(self.token)
            self.token = f"xoxe.xoxb-1-{self.oauth.serial()}"
            self._token_pages = 0
            return {
                "ok": True,
                "app_id": "A0KRD7HC3",
                "token_type": "bot",
                "scope": "users:read,users:read.email",
                "bot_user_id": "U0KRQLJ9H",
                "team": {"id": "T0001", "name": "Acme"},
                "access_token": self.token,
                "refresh_token": self.oauth.refresh_token,
                "expires_in": self.token_lifetime,
            }

        @self.route("GET", "/api/users.list")
        def users_list(request: Request):
            # Slack reports auth errors as HTTP 200 with ok:false, like nearly every other error.
            presented = (request.headers.get("authorization") or "").removeprefix("Bearer ")
            if self.expire_token_after is not None and self._token_pages >= self.expire_token_after:
                self.expired.add(self.token)
            if presented in self.expired:
                return {"ok": False, "error": "token_expired"}
            if presented != self.token:
                return {"ok": False, "error": "invalid_auth"}
            self._token_pages += 1
            time.sleep(self.page_delay)
            rows = sorted(self.members.values(), key=lambda m: m["id"])
            start = _decode(request.query_params.get("cursor"))
            if start is None:
                return {"ok": False, "error": "invalid_cursor"}
            limit = min(int(request.query_params.get("limit") or 0) or 1000, self.max_page)
            after = rows[start : start + limit]
            more = start + limit < len(rows)
            return {
                "ok": True,
                "members": after,
                "cache_ts": int(time.time()),
                "response_metadata": {"next_cursor": _encode(start + limit) if more else ""},
            }

    def reset(self) -> None:
        self.members.clear()
        self.requests.clear()
        self.bodies.clear()
        self.request_times.clear()
        self._failures.clear()
        self.max_page = 1000
        self.expire_token_after = None
        self.token_lifetime = TOKEN_LIFETIME
        self.token_endpoint_delay = 0.0
        self.page_delay = 0.0
        self.__dict__.pop("token", None)
        self.oauth = RefreshGrants("xoxe-1", rotates=True)
        self.expired.clear()
        self._token_pages = 0

    def put(self, user_id: str, name: str, *, email: str | None = None, is_bot: bool = False, **extra) -> None:
        self.members[user_id] = {
            "id": user_id,
            "team_id": "T0001",
            "name": name.lower(),
            "deleted": False,
            "real_name": name,
            "tz": "Europe/Paris",
            "is_admin": False,
            "is_owner": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": int(time.time()),
            "profile": {
                "real_name": name,
                "display_name": name.lower(),
                "email": email if email is not None else ("" if is_bot else f"{name.lower()}@example.com"),
                "title": "",
                "phone": "",
                "image_192": f"https://avatars.slack-edge.com/{user_id}_192.png",
            },
            **extra,
        }

    def put_slackbot(self) -> None:
        # Slackbot is a member with is_bot false: only its id tells it apart.
        self.put("USLACKBOT", "Slackbot", email="")


def _encode(offset: int) -> str:
    return base64.b64encode(f"user:{offset}".encode()).decode()


def _decode(cursor: str | None) -> int | None:
    if not cursor:
        return 0
    try:
        return int(base64.b64decode(cursor).decode().removeprefix("user:"))
    except ValueError:
        return None
