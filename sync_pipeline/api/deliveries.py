"""`POST /webhook-deliveries/{delivery_id}/retry`: an operator sends a webhook that gave up again."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from pydantic import Field
from starlette.routing import Route

from sync_pipeline.api.endpoint import Call, endpoint
from sync_pipeline.api.errors import ApiError, not_found, parse
from sync_pipeline.api.fields import Lenient
from sync_pipeline.webhooks.delivery import DELIVERED, DeliveryLog


class DeliveryPath(Lenient):
    delivery_id: str = Field(min_length=1, max_length=64)


@endpoint
def retry_delivery(call: Call) -> dict[str, Any]:
    """Due at once with a fresh series of attempts; the webhook sensor sends it at its next tick (within seconds)."""
    delivery_id = parse(DeliveryPath, call.path_params, "path").delivery_id
    log = DeliveryLog(call.services.store.engine)
    before = log.get(delivery_id)
    if before is None:
        raise not_found("not_found", f"there is no webhook delivery {delivery_id!r}")
    if before.status == DELIVERED:
        raise ApiError(400, "already_delivered", f"webhook delivery {delivery_id!r} was delivered; there is nothing to retry")
    after = log.retry(delivery_id)
    return {key: value for key, value in asdict(after).items() if key != "body"}


def routes() -> list[Route]:
    return [Route("/webhook-deliveries/{delivery_id}/retry", retry_delivery, methods=["POST"])]
