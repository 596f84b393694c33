"""Webhook bodies sent to the app, exactly as docs/http-api.md describes them: compact JSON, keys sorted."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from sync_pipeline.vocabulary import INCREMENTAL, INITIAL, WEBHOOK

SOURCE = "sync-pipeline"
FAILURE_TYPE = "script_error"  # Nango's error type for a sync script that failed
REFRESH_FAILURE_TYPE = "refresh_token_external_error"  # Nango's error type for a refused token refresh
ENVIRONMENT = "prod"  # sync_pipeline has one environment; Nango names its production one "prod"


@dataclass(frozen=True)
class SyncSubject:
    """Which stream a webhook is about."""

    connection_id: str
    integration: str
    sync_name: str
    variant: str
    model: str


def encode(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True)


def webhook_sync_type(sync_type: str) -> str:
    """A run kind as the app hears it: FULL and INCREMENTAL are both an INCREMENTAL run (Nango's words)."""
    return sync_type if sync_type in (INITIAL, WEBHOOK) else INCREMENTAL


def success_body(
    subject: SyncSubject,
    *,
    sync_type: str,
    started_at: str,
    added: int,
    updated: int,
    deleted: int,
    checkpoint_from: dict[str, Any] | None,
    checkpoint_to: dict[str, Any] | None,
) -> str:
    return encode(
        {
            **_common(subject, sync_type),
            "success": True,
            "modifiedAfter": started_at,
            "queryTimeStamp": started_at,
            "responseResults": {"added": added, "updated": updated, "deleted": deleted},
            "checkpoints": {"from": checkpoint_from or None, "to": checkpoint_to or None},
        }
    )


def failure_body(subject: SyncSubject, *, sync_type: str, description: str, started_at: str, failed_at: str) -> str:
    return encode(
        {
            **_common(subject, sync_type),
            "success": False,
            "error": {"type": FAILURE_TYPE, "description": description},
            "startedAt": started_at,
            "failedAt": failed_at,
        }
    )


def _common(subject: SyncSubject, sync_type: str) -> dict[str, Any]:
    return {
        "from": SOURCE,
        "type": "sync",
        "connectionId": subject.connection_id,
        "providerConfigKey": subject.integration,
        "syncName": subject.sync_name,
        "syncVariant": subject.variant,
        "model": subject.model,
        "syncType": webhook_sync_type(sync_type),
    }


def auth_refresh_failure_body(
    connection_id: str, integration: str, auth_mode: str, description: str, tags: dict[str, str] | None = None
) -> str:
    """Nango's `auth` webhook for a refresh the provider refused (`operation: "refresh"`, `success: false`)."""
    body: dict[str, Any] = {
        "from": SOURCE,
        "type": "auth",
        "connectionId": connection_id,
        "providerConfigKey": integration,
        "provider": integration,
        "authMode": auth_mode,
        "environment": ENVIRONMENT,
        "operation": "refresh",
        "success": False,
        "error": {"type": REFRESH_FAILURE_TYPE, "description": description},
    }
    if tags:
        body["tags"] = tags
    return encode(body)


def forward_body(integration: str, connection_id: str, payload: Any) -> str:
    """Nango's `forward` webhook: a provider's webhook as it came, for the connection it was attributed to."""
    return encode(
        {
            "from": integration,
            "type": "forward",
            "connectionId": connection_id,
            "providerConfigKey": integration,
            "payload": payload,
        }
    )


def signature_headers(body: bytes, signing_key: str | None) -> dict[str, str]:
    """`X-Nango-Hmac-Sha256` (HMAC of the body) and the legacy `X-Nango-Signature` (SHA-256 of key + body)."""
    if not signing_key:
        return {}
    key = signing_key.encode()
    return {
        "X-Nango-Hmac-Sha256": hmac.new(key, body, hashlib.sha256).hexdigest(),
        "X-Nango-Signature": hashlib.sha256(key + body).hexdigest(),
    }
