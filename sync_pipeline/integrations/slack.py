"""Slack: the workspace's users, from `users.list` (https://api.slack.com/methods/users.list)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from sync_pipeline.sdk import (
    Connection,
    CursorPagination,
    Integration,
    OAuthRefresh,
    SyncContext,
    envelope_error,
    json_envelope_error,
)

API = "https://slack.com/api"


def token_url(connection: Connection) -> str:
    """`oauth.v2.access` under the connection's API root (`connection_config.base_url`, else Slack's)."""
    return f"{str(connection.config.get('base_url') or API).rstrip('/')}/oauth.v2.access"


slack = Integration(
    "slack",
    base_url=API,
    # Slack answers most errors (invalid_auth, missing_scope...) as HTTP 200 with {"ok": false, "error": ...}.
    error_envelope=json_envelope_error(),
    # Token rotation (https://api.slack.com/authentication/rotation): tokens live 12 hours, each refresh
    # token is spent once, and an expired token is answered 200 {"ok": false, "error": "token_expired"}.
    refresh=OAuthRefresh(token_url=token_url, rotates=True, expired=envelope_error("token_expired"), ok_field="ok"),
    description="Slack workspace users",
)

SLACKBOT = "USLACKBOT"
# Slack recommends pages of at most 200 members; the next cursor is "" on the last page.
PAGES = CursorPagination(cursor_path="response_metadata.next_cursor", limit_param="limit", limit=200)


class SlackUser(BaseModel):
    id: str
    team_id: str | None = None
    name: str
    real_name: str | None = None
    display_name: str | None = None
    email: str | None = None
    title: str | None = None
    phone: str | None = None
    timezone: str | None = None
    avatar_url: str | None = None
    is_admin: bool = False
    is_owner: bool = False
    is_bot: bool = False
    deactivated: bool = False
    updated_at: datetime | None = None


def to_user(member: dict[str, Any]) -> dict[str, Any]:
    """A `users.list` member as a `SlackUser` (the profile's empty strings become None)."""
    profile = member.get("profile") or {}
    return {
        "id": member.get("id"),
        "team_id": member.get("team_id"),
        "name": member.get("name"),
        "real_name": member.get("real_name") or profile.get("real_name") or None,
        "display_name": profile.get("display_name") or None,
        "email": profile.get("email") or None,
        "title": profile.get("title") or None,
        "phone": profile.get("phone") or None,
        "timezone": member.get("tz"),
        "avatar_url": profile.get("image_192") or None,
        "is_admin": bool(member.get("is_admin")),
        "is_owner": bool(member.get("is_owner")),
        "is_bot": bool(member.get("is_bot")),
        "deactivated": bool(member.get("deleted")),
        "updated_at": member.get("updated"),  # unix seconds
    }


def is_bot(member: dict[str, Any]) -> bool:
    return bool(member.get("is_bot")) or member.get("id") == SLACKBOT


@slack.sync(models=[SlackUser], sync_type="full", track_deletes=True, frequency="every day")
def users(ctx: SyncContext) -> None:
    """Every member of the workspace; bots only when metadata says {"include_bots": true}."""
    include_bots = ctx.get_metadata().get("include_bots") is True
    for page in ctx.paginate("/users.list", PAGES, data_path="members", checkpoint=True):
        ctx.batch_save([to_user(m) for m in page if include_bots or not is_bot(m)], SlackUser)
