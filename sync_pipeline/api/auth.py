"""Bearer secret-key authentication, compared in constant time."""

from __future__ import annotations

import hmac

from starlette.datastructures import Headers

from sync_pipeline.api.errors import ApiError


def authenticate(headers: Headers, secret_key: str) -> None:
    """Accept `Authorization: Bearer <secret key>` or raise the 401 Nango answers."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "missing_auth_header", "Authentication failed: add an `Authorization: Bearer <secret key>` header")
    # compare_digest on bytes: its time does not depend on where the first differing byte is.
    if not hmac.compare_digest(token.strip().encode(), secret_key.encode()):
        raise ApiError(401, "unknown_account", "Authentication failed: the secret key is not valid")
