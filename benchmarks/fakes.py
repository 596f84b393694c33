"""What the sensor benchmarks stand on, of their own: a declared integration whose syncs they never run, and the
app's webhook receiver served on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from support import BenchContact  # a sibling module

from sync_pipeline.sdk import Integration, Registry, SyncContext

bench = Integration("bench", base_url="http://127.0.0.1:9")


@bench.sync(models=[BenchContact], sync_type="full", track_deletes=True, frequency="every hour")
def contacts(ctx: SyncContext) -> None:
    """Declared for its assets, partitions and sensors: the sensor benchmarks report events, they run no sync."""
    raise NotImplementedError("the sensor benchmarks do not run syncs")


registry = Registry.of(bench)


class Receiver:
    """The app's webhook endpoint: answers 200 to every POST and keeps the raw bodies, and when each arrived."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.arrived: list[float] = []  # time.time() of each body

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        self.bodies.append(body)
        self.arrived.append(time.time())
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"ok":true}'})


class SlackUsers:
    """Slack's `users.list` for the many-connections benchmark: the same `users` members to every token, one page."""

    def __init__(self, users: int) -> None:
        members = [{"id": f"U{n:05d}", "team_id": "T1", "name": f"member{n}", "deleted": False, "is_bot": False,
                    "profile": {"real_name": f"Member {n}", "email": f"member{n}@example.com"}} for n in range(users)]
        self.page = json.dumps({"ok": True, "members": members, "response_metadata": {"next_cursor": ""}}).encode()
        self.requests = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        self.requests += 1
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": self.page})


@contextmanager
def served(app) -> Iterator[str]:
    """Serve an ASGI app on a free 127.0.0.1 port in a thread; yields its root URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
