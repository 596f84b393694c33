"""The provider HTTP client of a sync: base URL and auth from the connection, retries on 429 and 5xx,
a deadline on each attempt, and bodies read inside the retry loop."""

from __future__ import annotations

import email.utils
import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import httpx

from sync_pipeline.sdk.errors import ProviderError, SyncError

if TYPE_CHECKING:
    from sync_pipeline.sdk.deadline import RunDeadline
    from sync_pipeline.sdk.declaration import Integration
    from sync_pipeline.sdk.oauth import TokenSource
    from sync_pipeline.store import Connection

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Transport failures worth another attempt: unreachable, reset, cut mid-body, timed out.
TRANSIENT_ERRORS = (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError, httpx.TimeoutException)
DEFAULT_REQUEST_DEADLINE = 300.0


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying: `attempts` tries in all, exponential backoff capped at `max_backoff`.

    A server's own Retry-After (or X-RateLimit-Reset when X-RateLimit-Remaining is 0) is honoured up
    to `max_wait`; a longer wait fails the request rather than hang a run for hours.
    """

    attempts: int = 6
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_wait: float = 900.0


class RetryTransport(httpx.BaseTransport):
    """Retries rate-limited, failing and unreachable requests; the last response is returned as is.

    Each attempt, body included, must finish within `deadline` seconds: a read timeout restarts on every
    byte, so a provider trickling its body would otherwise hold a run for ever. The body is read here,
    inside the loop, so a connection cut mid-body is retried like any other transient error.
    """

    def __init__(
        self,
        inner: httpx.BaseTransport,
        policy: RetryPolicy,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[str], None] | None = None,
        deadline: float = DEFAULT_REQUEST_DEADLINE,
        run_deadline: "RunDeadline | None" = None,
    ) -> None:
        self._inner = inner
        self._policy = policy
        self._sleep = sleep
        self._on_retry = on_retry or (lambda _message: None)
        self._deadline = deadline
        self._run_deadline = run_deadline  # the run's maximum run time: no attempt or wait reaches past it

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for attempt in range(1, self._policy.attempts + 1):
            if self._run_deadline is not None:
                self._run_deadline.check()
            last = attempt == self._policy.attempts
            try:
                response = self._attempt(request)
            except TRANSIENT_ERRORS as error:
                if self._run_deadline is not None:
                    self._run_deadline.check()  # the attempt was cut short by the run's time: say that
                if last:
                    raise
                self._wait(self._backoff(attempt), f"{request.method} {request.url.path} failed ({type(error).__name__})")
                continue
            if last or not _should_retry(response):
                return response
            wait = server_wait(response)
            if wait is not None and wait > self._policy.max_wait:
                return response
            self._wait(
                wait if wait is not None else self._backoff(attempt),
                f"{request.method} {request.url.path} answered {response.status_code}",
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(self, request: httpx.Request) -> httpx.Response:
        """One attempt, its whole body read before `deadline`; raises a TimeoutException past it."""
        started = time.monotonic()
        deadline = self._attempt_deadline()
        # No single read may wait beyond the deadline; between reads the clock is checked below.
        timeouts = dict(request.extensions.get("timeout") or {})
        timeouts["read"] = min(timeouts.get("read") or deadline, deadline)
        timeouts["connect"] = min(timeouts.get("connect") or deadline, deadline)
        request.extensions = {**request.extensions, "timeout": timeouts}
        response = self._inner.handle_request(request)
        chunks = []
        try:
            for chunk in response.stream:  # raw bytes: the client decodes them as usual
                chunks.append(chunk)
                if time.monotonic() - started > deadline:
                    raise httpx.ReadTimeout(
                        f"{request.method} {request.url.path}: the response took longer than the "
                        f"{deadline:g} s deadline",
                        request=request,
                    )
        finally:
            response.close()
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=b"".join(chunks),
            request=request,
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._inner.close()

    def _attempt_deadline(self) -> float:
        """Seconds one attempt may take: the request deadline, or less when the run's time runs out first."""
        if self._run_deadline is None:
            return self._deadline
        return max(0.01, min(self._deadline, self._run_deadline.remaining()))

    def _backoff(self, attempt: int) -> float:
        base = min(self._policy.max_backoff, self._policy.backoff * 2 ** (attempt - 1))
        return base * (0.5 + random.random() / 2)

    def _wait(self, seconds: float, reason: str) -> None:
        self._on_retry(f"{reason}; retrying in {seconds:.1f}s")
        if self._run_deadline is not None:
            seconds = max(0.0, min(seconds, self._run_deadline.remaining()))
        self._sleep(seconds)


def _should_retry(response: httpx.Response) -> bool:
    if response.status_code in RETRYABLE_STATUSES:
        return True
    # GitHub-style primary rate limit: 403 with no requests left until a reset time.
    return response.status_code == 403 and (
        "retry-after" in response.headers or response.headers.get("x-ratelimit-remaining") == "0"
    )


def server_wait(response: httpx.Response) -> float | None:
    """Seconds the server asked us to wait, from Retry-After (seconds or HTTP date) or X-RateLimit-Reset."""
    retry_after = response.headers.get("retry-after")
    if retry_after:
        if retry_after.strip().isdigit():
            return float(retry_after)
        try:
            moment = email.utils.parsedate_to_datetime(retry_after)
        except (TypeError, ValueError):
            return None
        return max(0.0, moment.timestamp() - time.time())
    reset = response.headers.get("x-ratelimit-reset")
    if response.headers.get("x-ratelimit-remaining") == "0" and reset and reset.isdigit():
        return max(0.0, float(reset) - time.time())
    return None


@cache
def shared_ssl_context() -> ssl.SSLContext:
    """One TLS context (CA bundle loaded once) for every run of the process: building one per client loaded
    certifi's bundle each run, a fifth of a small run's time on a Celery worker (docs/deploy.md)."""
    return httpx.create_ssl_context()


def build_client(
    integration: "Integration",
    connection: "Connection",
    *,
    policy: RetryPolicy | None = None,
    on_retry: Callable[[str], None] | None = None,
    transport: httpx.BaseTransport | None = None,
    tokens: "TokenSource | None" = None,
    run_deadline: "RunDeadline | None" = None,
) -> httpx.Client:
    """An httpx client for one connection: its base URL, its credentials, retries and provider errors.

    With `tokens`, and an integration that declares how its tokens refresh, each request carries the
    current token and an expired one is refreshed once (see `sdk.oauth.AuthTransport`).
    """
    headers = {"User-Agent": "sync-pipeline", **integration.headers}
    sender: httpx.BaseTransport = RetryTransport(
        transport or httpx.HTTPTransport(verify=shared_ssl_context()),
        policy or RetryPolicy(),
        on_retry=on_retry,
        deadline=integration.request_deadline,
        run_deadline=run_deadline,
    )
    auth = None
    if tokens is not None and integration.refresh is not None and integration.refresh.can_refresh(connection):
        from sync_pipeline.sdk.oauth import AuthTransport

        connection = tokens.current()
        sender = AuthTransport(sender, tokens, integration.refresh, integration.resolve_base_url)
    else:
        auth = _apply_credentials(integration, connection, headers)
    return httpx.Client(
        base_url=integration.resolve_base_url(connection),
        headers=headers,
        auth=auth,
        timeout=httpx.Timeout(60.0, connect=10.0),
        transport=sender,
        event_hooks={"response": [_provider_error_hook(integration, connection)]},
    )


def _apply_credentials(integration: "Integration", connection: "Connection", headers: dict[str, str]) -> Any:
    credentials = connection.credentials or {"type": "NONE"}
    kind = str(credentials.get("type", "NONE")).upper()
    if kind in {"OAUTH2", "OAUTH2_CC", "APP", "TBA", "JWT"}:
        token = credentials.get("access_token")
        if not token:
            raise SyncError(f"connection {connection.connection_id!r} has {kind} credentials without an access_token")
        headers["Authorization"] = f"Bearer {token}"
    elif kind == "API_KEY":
        key = credentials.get("apiKey") or credentials.get("api_key")
        if not key:
            raise SyncError(f"connection {connection.connection_id!r} has API_KEY credentials without an apiKey")
        header, prefix = integration.api_key_header
        headers[header] = f"{prefix}{key}"
    elif kind == "BASIC":
        return httpx.BasicAuth(credentials.get("username", ""), credentials.get("password", ""))
    elif kind != "NONE":
        raise SyncError(f"connection {connection.connection_id!r} has credentials of unknown type {kind!r}")
    return None


def _provider_error_hook(integration: "Integration", connection: "Connection") -> Callable[[httpx.Response], None]:
    def raise_for_provider_error(response: httpx.Response) -> None:
        if response.is_success and integration.error_envelope is None:
            return
        response.read()
        message = None
        if response.is_success:
            message = integration.error_envelope(response)  # type: ignore[misc]
            if message is None:
                return
        raise ProviderError(
            connection.connection_id,
            integration.name,
            response.status_code,
            message or provider_message(response),
            str(response.request.url.copy_with(query=None)),
        )

    return raise_for_provider_error


def provider_message(response: httpx.Response) -> str:
    """The provider's own words for an error: the usual JSON fields, else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]
    if isinstance(body, dict):
        for field in ("message", "error_description", "error", "errorCode", "detail"):
            value = body.get(field)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return value["message"]
    return response.text[:300]


def json_envelope_error(ok_field: str = "ok", message_field: str = "error") -> Callable[[httpx.Response], str | None]:
    """For APIs (Slack) that answer 200 with `{"ok": false, "error": "..."}`: the error, else None."""

    def check(response: httpx.Response) -> str | None:
        try:
            body = response.json()
        except ValueError:
            return None
        if isinstance(body, dict) and body.get(ok_field) is False:
            return str(body.get(message_field) or "request failed")
        return None

    return check
