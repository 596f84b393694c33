"""A generic provider for engine tests: cursor-paginated contacts with an `updated_since` filter."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from starlette.requests import Request
from starlette.responses import JSONResponse

from sync_pipeline_tests.fakes.server import FakeApi


class AcmeApi(FakeApi):
    """`GET /contacts?cursor=&limit=&updated_since=` -> `{"items": [...], "next": "<cursor>" | null}`."""

    token = "acme-token"

    def __init__(self) -> None:
        super().__init__()
        self.contacts: dict[str, dict] = {}
        self.crash_after_pages: int | None = None  # answer 500 forever after this many pages
        self.page_delay = 0.0  # seconds each page takes: a run long enough to watch
        # Every page says its next page is at this cursor (a paging bug), for 10 pages: a client that does not
        # notice reads the same page 10 times and reports success, as Nango's issue #7159 describes.
        self.stuck_cursor: str | None = None

        @self.route("GET", "/contacts")
        def contacts(request: Request):
            if request.headers.get("authorization") != f"Bearer {self.token}":
                return JSONResponse({"message": "invalid token"}, status_code=401)
            time.sleep(self.page_delay)
            pages_served = sum(1 for r in self.requests if r.url.path == "/contacts") - 1
            if self.crash_after_pages is not None and pages_served >= self.crash_after_pages:
                # Retry-After: 0 lets the client spend its retries at once: the tests that crash a run check what
                # the failed run leaves behind, not the client's backoff (test_http_and_pagination.py does),
                # and with it each failed run took the 15 s of the default RetryPolicy's backoff.
                return JSONResponse({"message": "backend exploded"}, status_code=500, headers={"Retry-After": "0"})
            rows = sorted(self.contacts.values(), key=lambda c: c["id"])
            since = request.query_params.get("updated_since")
            if since:
                rows = [c for c in rows if c["updated_at"] > since]
            start = int(request.query_params.get("cursor") or 0)
            limit = int(request.query_params.get("limit") or 2)
            page = rows[start : start + limit]
            more = start + limit < len(rows)
            if self.stuck_cursor is not None:
                return {"items": page, "next": self.stuck_cursor if pages_served < 10 else None}
            return {"items": page, "next": str(start + limit) if more else None}

    def put(self, contact_id: str, name: str, email: str | None = None) -> None:
        stamp = datetime.now(timezone.utc).isoformat()
        self.contacts[contact_id] = {
            "id": contact_id,
            "name": name,
            "email": email if email is not None else f"{name.lower()}@example.com",
            "updated_at": stamp,
        }
