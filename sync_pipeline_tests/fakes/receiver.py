"""The app's side of change webhooks: a real HTTP receiver that records what it is sent."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from starlette.responses import JSONResponse

from sync_pipeline_tests.fakes.server import FakeApi, ServedApp


class WebhookReceiver(FakeApi):
    """The app's webhook endpoint (`POST /hooks`): records raw bodies and headers; `fail_next(500, times=n)` fails,
    `down = True` answers 503 until set back; `accepted` holds the bodies it took, in arrival order."""

    def __init__(self) -> None:
        super().__init__()
        self.url = ""
        self.down = False
        self.accepted: list[bytes] = []

        @self.route("POST", "/hooks")
        def hooks(request):
            if self.down:
                return JSONResponse({"error": "maintenance"}, status_code=503)
            self.accepted.append(request.state.body)
            return {"ok": True}

    def received(self) -> list[tuple[dict[str, str], bytes]]:
        """(headers, raw body) of every request, in arrival order, failed ones included."""
        return [(dict(request.headers), body) for request, body in zip(self.requests, self.bodies)]


@contextmanager
def served_receiver() -> Iterator[WebhookReceiver]:
    """A WebhookReceiver served on 127.0.0.1 for the block; its `url` is the webhook URL to give the app."""
    receiver = WebhookReceiver()
    with ServedApp(receiver) as served:
        receiver.url = served.url + "/hooks"
        yield receiver
