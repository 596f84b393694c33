"""Errors a sync run raises, each naming what is wrong in words a user can act on."""

from __future__ import annotations


class SyncError(Exception):
    """A sync cannot run or continue: bad declaration, bad checkpoint, missing metadata, unknown connection."""


class ProviderError(SyncError):
    """The provider's API refused a request (after retries): carries its status and its own message."""

    def __init__(self, connection_id: str, integration: str, status: int, message: str, url: str) -> None:
        self.connection_id = connection_id
        self.integration = integration
        self.status = status
        self.provider_message = message
        super().__init__(
            f"{integration} answered {status} for connection {connection_id!r} ({url}): {message}"
        )
