"""GitHub: the issues of the repositories a connection names, kept current by polling and by webhooks."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel

from sync_pipeline.sdk import (
    BASE_VARIANT,
    GithubAppRefresh,
    Integration,
    LinkPagination,
    ProviderWebhookContext,
    SyncContext,
    SyncError,
    WebhookRejected,
)

github = Integration(
    "github",
    base_url="https://api.github.com",
    headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"},
    # GitHub App connections (credentials {"type": "APP", "installation_id": ...}) get one-hour installation
    # tokens minted with the app's private key; personal and OAuth tokens are used as they are.
    refresh=GithubAppRefresh(),
    description="GitHub issues",
)

PAGES = LinkPagination(limit_param="per_page", limit=100)


class GithubIssue(BaseModel):
    id: str
    number: int
    repository: str
    title: str
    body: str | None = None
    state: str
    state_reason: str | None = None
    author: str | None = None
    assignees: list[str] = []
    labels: list[str] = []
    comments: int = 0
    url: str
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None


def to_issue(issue: dict[str, Any], repository: str) -> dict[str, Any]:
    """An issue as the REST API and the `issues` webhook both send it, as a `GithubIssue`."""
    return {
        "id": str(issue.get("id")),
        "number": issue.get("number"),
        "repository": repository,
        "title": issue.get("title"),
        "body": issue.get("body"),
        "state": issue.get("state"),
        "state_reason": issue.get("state_reason"),
        "author": (issue.get("user") or {}).get("login"),
        "assignees": [a["login"] for a in issue.get("assignees") or []],
        "labels": [label["name"] for label in issue.get("labels") or [] if isinstance(label, dict)],
        "comments": issue.get("comments", 0),
        "url": issue.get("html_url"),
        "created_at": issue.get("created_at"),
        "updated_at": issue.get("updated_at"),
        "closed_at": issue.get("closed_at"),
    }


def repositories(ctx: SyncContext) -> list[str]:
    """`owner/repo` names this run syncs: the variant's own repository, or the base variant's list."""
    metadata = ctx.get_metadata()
    if ctx.variant == BASE_VARIANT:
        return [_repository_name(entry, "repositories") for entry in metadata.get("repositories") or []]
    entry = metadata.get(ctx.variant)
    if not entry:
        raise SyncError(
            f"github variant {ctx.variant!r} of connection {ctx.connection.connection_id!r} needs its repository: "
            f'set metadata["{ctx.variant}"] = {{"owner": "...", "repo": "..."}}'
        )
    return [_repository_name(entry, ctx.variant)]


def _repository_name(entry: Any, key: str) -> str:
    if isinstance(entry, dict) and entry.get("owner") and entry.get("repo"):
        return f"{entry['owner']}/{entry['repo']}"
    if isinstance(entry, str) and entry.count("/") == 1 and all(entry.split("/")):
        return entry
    raise SyncError(f'metadata["{key}"] names a repository as {entry!r}: use "owner/repo" or {{"owner", "repo"}}')


def lists_repositories(metadata: Mapping[str, Any]) -> bool:
    """The base variant has work only when the metadata lists `repositories`; otherwise each repository is a variant."""
    return bool(metadata.get("repositories"))


@github.sync(
    models=[GithubIssue],
    sync_type="incremental",
    frequency="every hour",
    base_variant=lists_repositories,
    webhook_subscriptions=["issues"],
)
def issues(ctx: SyncContext) -> None:
    """Issues (not pull requests) updated since the last run, in every repository of this variant."""
    params: dict[str, Any] = {"state": "all"}
    if ctx.last_sync_date:
        params["since"] = ctx.last_sync_date.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    repository_of = {f"/repos/{name}/issues": name for name in repositories(ctx)}
    for url in ctx.remaining(list(repository_of)):  # repositories before it were finished by a crashed run
        for page in ctx.paginate(url, PAGES, params=params, checkpoint=True):
            # The issues endpoint also lists pull requests; they carry a `pull_request` key.
            ctx.batch_save([to_issue(item, repository_of[url]) for item in page if "pull_request" not in item], GithubIssue)


@github.webhook
def on_webhook(ctx: ProviderWebhookContext) -> None:
    """`issues` events from a repository webhook: the issue is saved, or deleted, in the base variant."""
    connection = ctx.connection_signed_by("X-Hub-Signature-256")  # verify before reading anything, even a ping
    if ctx.headers.get("x-github-event") != "issues":
        return  # ping and every other event: acknowledged, nothing to store
    payload = ctx.json()
    try:
        issue = to_issue(payload["issue"], payload["repository"]["full_name"])
    except (AttributeError, KeyError, TypeError):
        raise WebhookRejected("an issues event needs `issue` and `repository.full_name`", status=400) from None
    ctx.use_connection(connection)
    if payload.get("action") == "deleted":
        ctx.batch_delete([issue["id"]], GithubIssue)
    else:
        ctx.batch_save([issue], GithubIssue)
