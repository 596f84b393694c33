"""Slack's Web API `users.list`: cursor pages, `{"ok": false}` errors at HTTP 200, a Bearer bot token."""

from __future__ import annotations

import base64
import time

from starlette.requests import Request

from sync_pipeline_tests.fakes.server import FakeApi


class SlackApi(FakeApi):
    """`GET /api/users.list?limit=&cursor=` -> `{"ok": true, "members": [...], "response_metadata": {...}}`."""

    token = "xoxb-slack-token"
    max_page = 1000  # Slack may return fewer members than `limit` asks for

    def __init__(self) -> None:
        super().__init__()
        self.members: dict[str, dict] = {}

        @self.route("GET", "/api/users.list")
        def users_list(request: Request):
            # Slack reports auth errors as HTTP 200 with ok:false, like nearly every other error.
            if request.headers.get("authorization") != f"Bearer {self.token}":
                return {"ok": False, "error": "invalid_auth"}
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
