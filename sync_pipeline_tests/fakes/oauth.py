"""What the fake providers' token endpoints share: the OAuth client, the live refresh token, rotation, and a log
of every grant asked for."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from starlette.requests import Request

CLIENT_ID = "client-id-123"
CLIENT_SECRET = "client-secret-never-logged"


def form(request: Request) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body, as the token endpoints read it."""
    return {key: values[-1] for key, values in parse_qs(request.state.body.decode()).items()}


@dataclass
class RefreshGrants:
    """The refresh side of one provider: `refresh_token` is the one that works; with `rotates`, each use
    replaces it and the old one is refused from then on. `grants` records every request's form."""

    prefix: str
    rotates: bool
    refresh_token: str = ""
    grants: list[dict[str, str]] = field(default_factory=list)
    _serial: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.refresh_token = self.refresh_token or f"{self.prefix}-refresh-0"

    def redeem(self, request: Request) -> str | None:
        """Check the form: None when granted (rotating the refresh token if it rotates), else the OAuth error code."""
        body = form(request)
        self.grants.append(body)
        if body.get("client_id") != CLIENT_ID or body.get("client_secret") != CLIENT_SECRET:
            return "invalid_client"
        if body.get("grant_type") != "refresh_token":
            return "unsupported_grant_type"
        if body.get("refresh_token") != self.refresh_token:
            return "invalid_grant"
        if self.rotates:
            self.refresh_token = f"{self.prefix}-refresh-{next(self._serial)}"
        return None

    def revoke(self) -> None:
        """The user revoked the app: the refresh token no longer works."""
        self.refresh_token = f"{self.prefix}-revoked"

    def serial(self) -> int:
        return next(self._serial)
