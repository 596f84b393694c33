"""The log of change webhooks sent to the app: `GET /webhook-deliveries`."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, Literal

from pydantic import Field
from starlette.routing import Route

from sync_pipeline.api.endpoint import Call, endpoint
from sync_pipeline.api.errors import parse
from sync_pipeline.api.fields import Strict


class DeliveriesQuery(Strict):
    status: Literal["pending", "delivered", "failed"] | None = None
    limit: int = Field(100, ge=1, le=1000)


@endpoint
def list_deliveries(call: Call) -> dict[str, Any]:
    """The webhooks sent (or being retried) to the app, the newest first, optionally of one status."""
    query = parse(DeliveriesQuery, dict(call.query), "query")
    deliveries = call.services.store.deliveries.list(status=query.status, limit=query.limit)
    return {"deliveries": [{**asdict(d), "body": _json_or_text(d.body)} for d in deliveries]}


def _json_or_text(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body


def routes() -> list[Route]:
    return [Route("/webhook-deliveries", list_deliveries, methods=["GET"])]
