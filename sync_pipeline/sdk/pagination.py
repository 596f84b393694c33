"""Pagination styles for `ctx.paginate`: cursor, Link header, offset, page number and next-URL.

Each page comes as a `Page`: a list of the page's items whose `.next` is what to pass back as
`start=` to resume after it (save it in a checkpoint), or None on the last page.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from sync_pipeline.sdk.errors import SyncError


class Page(list):
    """The items of one page, and where the next page starts (`None` after the last page)."""

    def __init__(self, items: list[Any], next: Any) -> None:
        super().__init__(items)
        self.next = next


def dig(body: Any, path: str | None) -> Any:
    """`dig(body, "response_metadata.next_cursor")`: a dotted path into parsed JSON, None if absent."""
    if not path:
        return body
    for part in path.split("."):
        if not isinstance(body, dict):
            return None
        body = body.get(part)
    return body


class RepeatedCursor(SyncError):
    """The provider handed back a cursor or next URL it had already given: paging on would loop for ever."""


def without_repeats(pages: Iterator[Page], url: str, start: Any = None) -> Iterator[Page]:
    """`pages`, stopped with `RepeatedCursor` when a page's `next` is one already followed (or `start`).

    Raised before the repeated page is requested: a provider that keeps answering the same cursor
    (Nango's issue #7159) fails the run, naming the cursor, instead of looping or reporting success.
    """
    followed = {_hashable(start)} if start is not None else set()
    count = 0
    for page in pages:
        count += 1
        yield page
        if page.next is None:
            continue
        marker = _hashable(page.next)
        if marker in followed:
            raise RepeatedCursor(
                f"paginating {url}: page {count} gave the same next cursor or URL as an earlier page "
                f"({page.next!r}); stopping instead of reading the same pages again"
            )
        followed.add(marker)


def _hashable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) else repr(value)


class Paginator(Protocol):
    def pages(
        self, client: httpx.Client, url: str, params: dict[str, Any], data_path: str | None, start: Any
    ) -> Iterator[Page]: ...


def _items(response: httpx.Response, data_path: str | None) -> list[Any]:
    items = dig(response.json(), data_path)
    return list(items) if items else []


@dataclass(frozen=True)
class CursorPagination:
    """The next page's cursor is in the body (`cursor_path`) and goes back as a query parameter."""

    cursor_path: str
    cursor_param: str = "cursor"
    limit_param: str | None = "limit"
    limit: int | None = 100

    def pages(self, client, url, params, data_path, start) -> Iterator[Page]:
        cursor = start
        while True:
            query = {**params, **_limit(self.limit_param, self.limit)}
            if cursor:
                query[self.cursor_param] = cursor
            response = client.get(url, params=query)
            cursor = dig(response.json(), self.cursor_path) or None
            yield Page(_items(response, data_path), cursor)
            if not cursor:
                return


@dataclass(frozen=True)
class LinkPagination:
    """The next page's URL is in the `Link: <...>; rel="next"` header (GitHub, many REST APIs)."""

    limit_param: str | None = "per_page"
    limit: int | None = 100

    def pages(self, client, url, params, data_path, start) -> Iterator[Page]:
        response = client.get(start) if start else client.get(url, params={**params, **_limit(self.limit_param, self.limit)})
        while True:
            next_url = response.links.get("next", {}).get("url")
            yield Page(_items(response, data_path), next_url)
            if not next_url:
                return
            response = client.get(next_url)


@dataclass(frozen=True)
class NextUrlPagination:
    """The next page's URL (absolute or relative to the base URL) is in the body (Salesforce `nextRecordsUrl`)."""

    next_url_path: str

    def pages(self, client, url, params, data_path, start) -> Iterator[Page]:
        response = client.get(start) if start else client.get(url, params=params)
        while True:
            next_url = dig(response.json(), self.next_url_path) or None
            yield Page(_items(response, data_path), next_url)
            if not next_url:
                return
            response = client.get(next_url)


@dataclass(frozen=True)
class OffsetPagination:
    """`offset`/`limit` query parameters; the last page is the one shorter than `limit`."""

    limit: int = 100
    offset_param: str = "offset"
    limit_param: str = "limit"

    def pages(self, client, url, params, data_path, start) -> Iterator[Page]:
        offset = int(start or 0)
        while True:
            response = client.get(url, params={**params, self.offset_param: offset, self.limit_param: self.limit})
            items = _items(response, data_path)
            offset += len(items)
            done = len(items) < self.limit
            yield Page(items, None if done else offset)
            if done:
                return


@dataclass(frozen=True)
class PagePagination:
    """`page` numbers from `first_page`; the last page is the one shorter than `limit`."""

    limit: int = 100
    page_param: str = "page"
    limit_param: str = "per_page"
    first_page: int = 1

    def pages(self, client, url, params, data_path, start) -> Iterator[Page]:
        page = int(start or self.first_page)
        while True:
            response = client.get(url, params={**params, self.page_param: page, self.limit_param: self.limit})
            items = _items(response, data_path)
            page += 1
            done = len(items) < self.limit
            yield Page(items, None if done else page)
            if done:
                return


def _limit(param: str | None, value: int | None) -> dict[str, Any]:
    return {param: value} if param and value else {}
