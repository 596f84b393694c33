"""The provider client: auth from credentials, retries that honour the server, and each pagination style."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse

from sync_pipeline.sdk import (
    CursorPagination,
    Integration,
    LinkPagination,
    NextUrlPagination,
    OffsetPagination,
    PagePagination,
    ProviderError,
    RetryPolicy,
    SyncContext,
    json_envelope_error,
)
from sync_pipeline.sdk.http import build_client
from sync_pipeline.store import Connection
from sync_pipeline_tests.fakes.server import FakeApi, ServedApp

ITEMS = [{"id": str(n)} for n in range(7)]


def pages_api() -> FakeApi:
    api = FakeApi()

    @api.route("GET", "/cursor")
    def cursor(request: Request):
        start = int(request.query_params.get("cursor") or 0)
        nxt = start + 3 if start + 3 < len(ITEMS) else None
        return {"data": ITEMS[start : start + 3], "meta": {"next": str(nxt) if nxt else ""}}

    @api.route("GET", "/link")
    def link(request: Request):
        page = int(request.query_params.get("page") or 1)
        headers = {}
        if page * 3 < len(ITEMS):
            headers["Link"] = f'<{request.url.replace(query=f"page={page + 1}")}>; rel="next", <x>; rel="last"'
        return JSONResponse(ITEMS[(page - 1) * 3 : page * 3], headers=headers)

    @api.route("GET", "/next-url")
    def next_url(request: Request):
        start = int(request.query_params.get("from") or 0)
        more = start + 3 < len(ITEMS)
        return {"records": ITEMS[start : start + 3], "nextRecordsUrl": f"/next-url?from={start + 3}" if more else None}

    @api.route("GET", "/offset")
    def offset(request: Request):
        start, limit = int(request.query_params["offset"]), int(request.query_params["limit"])
        return {"rows": ITEMS[start : start + limit]}

    @api.route("GET", "/pages")
    def pages(request: Request):
        page, size = int(request.query_params["page"]), int(request.query_params["per_page"])
        return ITEMS[(page - 1) * size : page * size]

    @api.route("GET", "/whoami")
    def whoami(request: Request):
        return {"authorization": request.headers.get("authorization"), "x-api-key": request.headers.get("x-api-key")}

    @api.route("GET", "/slack-style")
    def slack_style(request: Request):
        return {"ok": False, "error": "invalid_auth"}

    return api


@pytest.fixture(scope="module")
def served():
    api = pages_api()
    with ServedApp(api) as server:
        api.url = server.url
        yield api


def client_for(url: str, credentials=None, **integration_options) -> httpx.Client:
    integration = Integration("fake", base_url=url, **integration_options)
    connection = Connection("fake", "conn-1", credentials=credentials or {"type": "NONE"})
    return build_client(integration, connection, policy=RetryPolicy(attempts=3, backoff=0.05))


@pytest.mark.parametrize(
    ("path", "paginator", "data_path"),
    [
        ("/cursor", CursorPagination(cursor_path="meta.next", limit_param=None), "data"),
        ("/link", LinkPagination(limit_param=None), None),
        ("/next-url", NextUrlPagination(next_url_path="nextRecordsUrl"), "records"),
        ("/offset", OffsetPagination(limit=3), "rows"),
        ("/pages", PagePagination(limit=3), None),
    ],
)
def test_every_pagination_style_reads_every_item_once_and_can_resume(served, path, paginator, data_path):
    with client_for(served.url) as client:
        pages = list(paginator.pages(client, path, {}, data_path, None))
        resumed = list(paginator.pages(client, path, {}, data_path, pages[0].next))

    assert [item for page in pages for item in page] == ITEMS
    assert pages[-1].next is None
    assert [item for page in resumed for item in page] == ITEMS[len(pages[0]) :]


@pytest.mark.parametrize(
    ("credentials", "options", "expected"),
    [
        ({"type": "OAUTH2", "access_token": "tok"}, {}, {"authorization": "Bearer tok", "x-api-key": None}),
        ({"type": "API_KEY", "apiKey": "k"}, {"api_key_header": ("X-Api-Key", "")}, {"authorization": None, "x-api-key": "k"}),
        ({"type": "BASIC", "username": "u", "password": "p"}, {}, {"authorization": "Basic dTpw", "x-api-key": None}),
    ],
)
def test_credentials_become_the_providers_auth_header(served, credentials, options, expected):
    with client_for(served.url, credentials, **options) as client:
        assert client.get("/whoami").json() == expected


def test_5xx_is_retried_until_it_succeeds(served):
    served.fail_next(503, times=2)
    with client_for(served.url) as client:
        assert client.get("/whoami").status_code == 200


def test_retry_after_as_an_http_date_is_honoured(served):
    when = email.utils.formatdate(time.time() + 2, usegmt=True)
    served.fail_next(429, headers={"Retry-After": when})
    started = time.monotonic()
    with client_for(served.url) as client:
        assert client.get("/whoami").status_code == 200
    assert time.monotonic() - started >= 0.9


def test_a_server_that_keeps_failing_raises_a_provider_error_with_its_message(served):
    served.fail_next(500, {"message": "database on fire"}, times=3)
    with client_for(served.url) as client, pytest.raises(ProviderError) as raised:
        client.get("/whoami")
    assert raised.value.status == 500
    assert "conn-1" in str(raised.value) and "database on fire" in str(raised.value)


def test_a_wait_longer_than_the_policy_allows_fails_at_once(served):
    served.fail_next(429, {"message": "come back tomorrow"}, headers={"Retry-After": "86400"})
    started = time.monotonic()
    with client_for(served.url) as client, pytest.raises(ProviderError, match="come back tomorrow"):
        client.get("/whoami")
    assert time.monotonic() - started < 5


def test_an_unreachable_provider_is_retried_then_raises():
    with client_for("http://127.0.0.1:9") as client, pytest.raises(httpx.ConnectError):
        client.get("/anything")


def test_an_error_envelope_in_a_200_is_a_provider_error(served):
    with client_for(served.url, error_envelope=json_envelope_error()) as client:
        with pytest.raises(ProviderError, match="invalid_auth"):
            client.get("/slack-style")
        assert client.get("/whoami").status_code == 200


def context_on(url: str, checkpoint: dict | None, saved: list) -> SyncContext:
    integration = Integration("fake", base_url=url)

    @integration.sync(models=[Thing])
    def things(ctx: SyncContext) -> None:  # pragma: no cover - only its declaration is used
        pass

    return SyncContext(
        sync=things,
        connection=Connection("fake", "conn-1"),
        variant="base",
        cache=None,  # type: ignore[arg-type]  # paging only: nothing is saved
        last_sync_date=None,
        checkpoint=checkpoint,
        on_checkpoint=saved.append,
        generation=None,
    )


class Thing(BaseModel):
    id: str


CURSOR = CursorPagination(cursor_path="meta.next", limit_param=None)


def test_checkpointed_pagination_saves_each_handled_page_and_clears_when_done(served):
    saved: list = []
    with context_on(served.url, {"other": "kept"}, saved) as ctx:
        handled = []
        for page in ctx.paginate("/cursor", CURSOR, data_path="data", checkpoint=True):
            # The page is checkpointed only after the sync has handled it: not yet.
            assert len(saved) == len(handled)
            handled.append(list(page))

    assert [item for page in handled for item in page] == ITEMS
    assert saved == [
        {"other": "kept", "paginate_url": "/cursor", "paginate_next": "3"},
        {"other": "kept", "paginate_url": "/cursor", "paginate_next": "6"},
        {"other": "kept"},  # the URL is done: its cursor is cleared, the sync's own keys stay
    ]


def test_checkpointed_pagination_resumes_after_the_last_handled_page(served):
    saved: list = []
    with context_on(served.url, {"paginate_url": "/cursor", "paginate_next": "6"}, saved) as ctx:
        resumed = [item for page in ctx.paginate("/cursor", CURSOR, data_path="data", checkpoint=True) for item in page]
        other = [item for page in ctx.paginate("/cursor", CURSOR, data_path="data", checkpoint=True) for item in page]

    assert resumed == ITEMS[6:]
    assert other == ITEMS, "once done, the same URL pages from its start"
    assert saved[-1] is None


def test_remaining_skips_the_urls_before_the_one_a_crashed_run_was_paging(served):
    with context_on(served.url, {"paginate_url": "/b", "paginate_next": "x"}, []) as ctx:
        assert ctx.remaining(["/a", "/b", "/c"]) == ["/b", "/c"]
    with context_on(served.url, None, []) as ctx:
        assert ctx.remaining(["/a", "/b", "/c"]) == ["/a", "/b", "/c"]
