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


def describe_error(error: BaseException) -> str:
    """`Type: message (METHOD url)`: what a person needs to act on a failed run, without secrets.

    httpx errors carry the request: its URL is shown without query string or user info (tokens travel
    there); a `ProviderError` already names the provider, its status and message, and the URL.
    """
    message = str(error).strip() or repr(error)
    request = _request_of(error)
    if request is not None and not isinstance(error, ProviderError):
        url = request.url.copy_with(query=None, fragment=None, username=None, password=None)
        message = f"{message} ({request.method} {url})"
    cause = error.__cause__ or error.__context__
    if cause is not None and not isinstance(error, SyncError) and str(cause) and str(cause) not in message:
        message = f"{message}; caused by {type(cause).__name__}: {cause}"
    return f"{type(error).__name__}: {message}"


def _request_of(error: BaseException):
    try:
        return getattr(error, "request", None)  # httpx raises RuntimeError when an error has no request
    except RuntimeError:
        return None
