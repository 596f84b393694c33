"""A tiny route-decorator router for fake APIs, served by a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sync_pipeline.demo.provider import Served

Handler = Callable[[Request], Any]


@dataclass
class InjectedFailure:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class BodyFault:
    """How the next response's body misbehaves: trickled a byte every `byte_every` s, or cut after `cut_after` bytes."""

    byte_every: float | None = None
    cut_after: int | None = None


class FakeApi:
    """An ASGI app: register handlers with `@api.route("GET", "/path/{name}")`; every request is recorded.

    `fail_next(...)` makes the next requests fail (429 with Retry-After, 5xx...) before reaching handlers;
    `trickle_next(...)` and `cut_next(...)` make the next responses' bodies trickle or break off half way;
    `stall_next(...)` holds the next requests unanswered.
    """

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.requests: list[Request] = []
        self.bodies: list[bytes] = []
        self.request_times: list[float] = []
        self._failures: deque[InjectedFailure] = deque()
        self._body_faults: deque[BodyFault] = deque()
        self._stalls: deque[float] = deque()

    def route(self, method: str, path: str) -> Callable[[Handler], Handler]:
        pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "$")

        def register(handler: Handler) -> Handler:
            self._routes.append((method, pattern, handler))
            return handler

        return register

    def fail_next(self, status: int, body: Any = None, headers: dict[str, str] | None = None, times: int = 1) -> None:
        for _ in range(times):
            self._failures.append(InjectedFailure(status, body if body is not None else {"error": "injected"}, headers or {}))

    def trickle_next(self, byte_every: float, times: int = 1) -> None:
        """The next responses send their body one byte every `byte_every` seconds."""
        self._body_faults.extend(BodyFault(byte_every=byte_every) for _ in range(times))

    def stall_next(self, seconds: float, times: int = 1) -> None:
        """The next requests get no answer at all for `seconds` (a provider that hangs), then their response."""
        self._stalls.extend([seconds] * times)

    def cut_next(self, after_bytes: int = 10, times: int = 1) -> None:
        """The next responses announce their full length, send `after_bytes` of the body and drop the connection."""
        self._body_faults.extend(BodyFault(cut_after=after_bytes) for _ in range(times))

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = await request.body()
        self.requests.append(request)
        self.bodies.append(body)
        self.request_times.append(time.monotonic())
        if self._stalls:
            await asyncio.sleep(self._stalls.popleft())
        response = self._respond(request, body)
        if self._body_faults:
            await self._misbehave(self._body_faults.popleft(), response, send)
            return
        await response(scope, receive, send)

    @staticmethod
    async def _misbehave(fault: BodyFault, response: Response, send) -> None:
        await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers})
        payload = response.body
        if fault.cut_after is not None:
            await send({"type": "http.response.body", "body": payload[: fault.cut_after], "more_body": True})
            # Raising after the response started makes uvicorn close the connection mid-body.
            raise ConnectionAbortedError("injected: connection cut mid-body")
        for index in range(len(payload)):
            await send({"type": "http.response.body", "body": payload[index : index + 1], "more_body": True})
            await asyncio.sleep(fault.byte_every or 0)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _respond(self, request: Request, body: bytes) -> Response:
        if self._failures:
            failure = self._failures.popleft()
            return JSONResponse(failure.body, status_code=failure.status, headers=failure.headers)
        for method, pattern, handler in self._routes:
            match = pattern.match(request.url.path)
            if match and method == request.method:
                request.state.body = body
                result = handler(request, **match.groupdict())
                return result if isinstance(result, Response) else JSONResponse(result)
        return JSONResponse({"message": "Not Found"}, status_code=404)

    def paths(self) -> list[str]:
        return [request.url.path for request in self.requests]


class ServedApp(Served):
    """An ASGI app served by uvicorn in a thread on a free 127.0.0.1 port, as a context manager; `url` is its root."""

    def __enter__(self) -> "ServedApp":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
