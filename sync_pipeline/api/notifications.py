"""The log of change webhooks sent to the app: `GET /webhook-deliveries`, `POST /webhook-deliveries/{id}/retry`."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, Literal

from pydantic import BaseModel, Field
from starlette.routing import Route

from sync_pipeline.api.endpoint import Call, endpoint
from sync_pipeline.api.errors import ApiError, not_found
from sync_pipeline.api.fields import Lenient, Strict
from sync_pipeline.store import DELIVERED


class DeliveriesQuery(Strict):
    status: Literal["pending", "delivered", "failed"] | None = None
    limit: int = Field(100, ge=1, le=1000)


class DeliveryView(BaseModel):
    delivery_id: str
    url: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: str
    last_error: str | None
    created_at: str
    updated_at: str
    body: Any  # the JSON that was sent (or its text, if it was not JSON)


class DeliveryList(BaseModel):
    deliveries: list[DeliveryView]


@endpoint(query=DeliveriesQuery, response=DeliveryList)
def list_deliveries(call: Call) -> dict[str, Any]:
    """The change webhooks sent (or being retried) to the app, the newest first, optionally of one status."""
    query: DeliveriesQuery = call.parse_query()
    deliveries = call.services.store.deliveries.list(status=query.status, limit=query.limit)
    return {"deliveries": [{**asdict(d), "body": _json_or_text(d.body)} for d in deliveries]}


class DeliveryPath(Lenient):
    delivery_id: str = Field(min_length=1, max_length=64)


@endpoint(path=DeliveryPath, response=DeliveryView)
def retry_delivery(call: Call) -> dict[str, Any]:
    """Send a failed (or pending) delivery again now, with a fresh series of attempts.

    The notifications sensor sends it at its next tick, within seconds.
    """
    delivery_id = call.parse_path().delivery_id
    log = call.services.store.deliveries
    before = log.get(delivery_id)
    if before is None:
        raise not_found("not_found", f"there is no webhook delivery {delivery_id!r}")
    if before.status == DELIVERED:
        raise ApiError(400, "already_delivered", f"webhook delivery {delivery_id!r} was delivered; there is nothing to retry")
    retried = log.retry(delivery_id)
    return {**asdict(retried), "body": _json_or_text(retried.body)}


def _json_or_text(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body


def routes() -> list[Route]:
    return [
        Route("/webhook-deliveries", list_deliveries, methods=["GET"]),
        Route("/webhook-deliveries/{delivery_id}/retry", retry_delivery, methods=["POST"]),
    ]
