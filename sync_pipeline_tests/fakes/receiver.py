"""The app's side of change webhooks: a real HTTP receiver that records what it is sent."""

from __future__ import annotations

from sync_pipeline_tests.fakes.server import FakeApi


class WebhookReceiver(FakeApi):
    """The app's webhook endpoint (`POST /hooks`): records raw bodies and headers; `fail_next(500, times=n)` fails."""

    def __init__(self) -> None:
        super().__init__()
        self.url = ""

        @self.route("POST", "/hooks")
        def hooks(request):
            return {"ok": True}

    def received(self) -> list[tuple[dict[str, str], bytes]]:
        """(headers, raw body) of every request, in arrival order, failed ones included."""
        return [(dict(request.headers), body) for request, body in zip(self.requests, self.bodies)]
