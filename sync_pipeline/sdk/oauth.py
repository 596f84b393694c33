"""Token refresh as an integration declares it (`Integration(..., refresh=OAuthRefresh(...))`), and the transport
that keeps a sync's requests authorized: a fresh token before each request, one refresh and retry on expiry."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import jwt

from sync_pipeline.sdk.errors import SyncError

if TYPE_CHECKING:
    from sync_pipeline.store import Connection

DEFAULT_MARGIN = timedelta(minutes=5)
# A token endpoint's 4xx means the grant or the client is refused: asking again will not help.
REFUSED_STATUSES = range(400, 500)


class RefreshRefused(SyncError):
    """The provider refused to refresh (invalid_grant, a used rotating token, a revoked app): the credentials
    are no good until the app imports new ones. `reason` is the provider's error code, never a secret."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CredentialsFailed(SyncError):
    """A run or request met a connection whose credentials an earlier refresh found failed."""


@dataclass(frozen=True)
class Refreshed:
    """What a refresh gives: the credentials and connection_config to store in place of the old ones."""

    credentials: dict[str, Any] = field(repr=False)
    config: dict[str, Any]


class TokenRefresh(Protocol):
    """How an integration's tokens are renewed (OAuthRefresh and GithubAppRefresh implement it)."""

    margin: timedelta

    def can_refresh(self, connection: "Connection") -> bool: ...

    def is_expired(self, response: httpx.Response) -> bool: ...

    def refresh(self, http: httpx.Client, connection: "Connection", client: dict[str, Any], api_base: str) -> Refreshed: ...


class TokenSource(Protocol):
    """The connection with credentials fit to use, refreshing them when due (see orchestration.credentials)."""

    def current(self) -> "Connection": ...

    def after_rejection(self, stale_token: str) -> "Connection": ...


# -- expiry signals and answers ---------------------------------------------------------------------


def unauthorized(response: httpx.Response) -> bool:
    """The usual signal of an expired token: HTTP 401."""
    return response.status_code == 401


def envelope_error(*codes: str, ok_field: str = "ok", error_field: str = "error") -> Callable[[httpx.Response], bool]:
    """For APIs that answer 200 `{"ok": false, "error": "token_expired"}` (Slack): True for those codes."""

    def check(response: httpx.Response) -> bool:
        if response.status_code != 200 or "json" not in response.headers.get("content-type", ""):
            return False
        response.read()
        try:
            body = response.json()
        except ValueError:
            return False
        return isinstance(body, dict) and body.get(ok_field) is False and body.get(error_field) in codes

    return check


def expires_in(answer: dict[str, Any]) -> datetime | None:
    """The standard OAuth answer's `expires_in` (seconds from now), if it has one."""
    seconds = answer.get("expires_in")
    if isinstance(seconds, (int, float)) or (isinstance(seconds, str) and seconds.isdigit()):
        return datetime.now(timezone.utc) + timedelta(seconds=float(seconds))
    return None


def no_expiry(_answer: dict[str, Any]) -> datetime | None:
    """For tokens whose answer says nothing of their life (Salesforce): refreshed when the API refuses them."""
    return None


def expiry_of(credentials: dict[str, Any]) -> datetime | None:
    """`expires_at` of stored credentials: ISO 8601 text (as Nango stores it) or Unix seconds."""
    value = credentials.get("expires_at")
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    if isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return None


def needs_refresh(credentials: dict[str, Any], margin: timedelta, now: datetime | None = None) -> bool:
    """No access token yet, or one that expires within `margin`."""
    if not credentials.get("access_token"):
        return True
    expiry = expiry_of(credentials)
    return expiry is not None and expiry - margin <= (now or datetime.now(timezone.utc))


def oauth_refusal(response: httpx.Response, ok_field: str | None = None) -> str | None:
    """The error code of a token endpoint's refusal (`invalid_grant`...), or None when it granted."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        refused = response.status_code in REFUSED_STATUSES or (ok_field is not None and body.get(ok_field) is False)
        if refused:
            return str(body.get("error") or body.get("error_code") or body.get("message") or response.status_code)
        return None
    return f"HTTP {response.status_code}" if response.status_code in REFUSED_STATUSES else None


def _require(client: dict[str, Any], *names: str) -> None:
    missing = [name for name in names if not client.get(name)]
    if missing:
        raise SyncError(f"the integration's client credentials lack {', '.join(missing)}")


def _granted(response: httpx.Response, ok_field: str | None = None) -> dict[str, Any]:
    """A token endpoint's answer: refused (4xx, or `ok: false`), failing for now (5xx), or granted."""
    reason = oauth_refusal(response, ok_field)
    if reason is not None:
        raise RefreshRefused(reason)
    if not response.is_success:
        raise SyncError(f"the token endpoint answered {response.status_code}; the refresh will be tried again")
    try:
        answer = response.json()
    except ValueError:
        raise SyncError("the token endpoint answered something other than JSON") from None
    if not isinstance(answer, dict):
        raise SyncError("the token endpoint answered something other than a JSON object")
    return answer


# -- the declarations ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OAuthRefresh:
    """An OAuth 2 refresh-token grant: POST the form to `token_url` with the integration's client id and secret.

    `token_url` may be a function of the connection (a login host in its connection_config). `rotates`:
    the answer carries a new refresh token and the old one is refused from then on. `read_expiry` reads the
    new expiry from the answer; `config_from` names connection_config values the answer replaces
    (Salesforce's `instance_url`). `expired` tells a response that refused an expired token.
    """

    token_url: str | Callable[["Connection"], str]
    grant: str = "refresh_token"
    rotates: bool = False
    read_expiry: Callable[[dict[str, Any]], datetime | None] = expires_in
    config_from: Callable[[dict[str, Any]], dict[str, Any]] = lambda _answer: {}
    expired: Callable[[httpx.Response], bool] = unauthorized
    ok_field: str | None = None  # Slack's token endpoint answers errors at 200 with `ok: false` too
    margin: timedelta = DEFAULT_MARGIN

    def can_refresh(self, connection: "Connection") -> bool:
        return bool(connection.credentials.get("refresh_token"))

    def is_expired(self, response: httpx.Response) -> bool:
        return self.expired(response)

    def refresh(self, http: httpx.Client, connection: "Connection", client: dict[str, Any], api_base: str) -> Refreshed:
        _require(client, "client_id", "client_secret")
        url = self.token_url(connection) if callable(self.token_url) else self.token_url
        form = {
            "grant_type": self.grant,
            "refresh_token": connection.credentials["refresh_token"],
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
        }
        answer = _granted(http.post(url, data=form, headers={"Accept": "application/json"}), self.ok_field)
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise SyncError("the token endpoint's answer has no access_token")
        credentials = {**connection.credentials, "type": "OAUTH2", "access_token": token}
        if answer.get("refresh_token"):
            credentials["refresh_token"] = answer["refresh_token"]
        elif self.rotates:
            raise SyncError("the token endpoint's answer has no new refresh_token, and this provider rotates them")
        expiry = self.read_expiry(answer)
        credentials.pop("expires_at", None)
        if expiry is not None:
            credentials["expires_at"] = _iso(expiry)
        return Refreshed(credentials, {**connection.config, **self.config_from(answer)})


@dataclass(frozen=True)
class GithubAppRefresh:
    """A GitHub App installation token: a JWT (RS256, signed with the app's private key) buys a one-hour token
    at `POST {api}/app/installations/{installation_id}/access_tokens`.

    The installation id is the connection's (`credentials.installation_id` or `connection_config.installation_id`);
    the app id and private key are the integration's client credentials.
    """

    expired: Callable[[httpx.Response], bool] = unauthorized
    margin: timedelta = DEFAULT_MARGIN
    jwt_lifetime: timedelta = timedelta(minutes=9)  # GitHub refuses more than 10 minutes

    def can_refresh(self, connection: "Connection") -> bool:
        return bool(installation_id(connection))

    def is_expired(self, response: httpx.Response) -> bool:
        return self.expired(response)

    def refresh(self, http: httpx.Client, connection: "Connection", client: dict[str, Any], api_base: str) -> Refreshed:
        _require(client, "app_id", "private_key")
        response = http.post(
            f"{api_base.rstrip('/')}/app/installations/{installation_id(connection)}/access_tokens",
            headers={"Authorization": f"Bearer {self.app_jwt(client)}", "Accept": "application/vnd.github+json"},
        )
        answer = _granted(response)
        if not answer.get("token"):
            raise SyncError("GitHub's installation token answer has no token")
        credentials = {**connection.credentials, "access_token": answer["token"]}
        credentials.setdefault("type", "APP")
        credentials.pop("expires_at", None)
        if answer.get("expires_at"):
            credentials["expires_at"] = answer["expires_at"]
        return Refreshed(credentials, dict(connection.config))

    def app_jwt(self, client: dict[str, Any]) -> str:
        """The app's JWT: issued a minute ago (GitHub's advice against clock drift), short-lived."""
        now = int(time.time())
        claims = {"iat": now - 60, "exp": now + int(self.jwt_lifetime.total_seconds()), "iss": str(client["app_id"])}
        try:
            return jwt.encode(claims, client["private_key"], algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError):
            # The key's text never goes into the message.
            raise SyncError("the GitHub App's private_key is not a PEM RSA private key") from None


def installation_id(connection: "Connection") -> str | None:
    value = connection.credentials.get("installation_id") or connection.config.get("installation_id")
    return str(value) if value else None


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the transport ------------------------------------------------------------------------------------


class AuthTransport(httpx.BaseTransport):
    """Puts the connection's current token on every request; on an expired-token answer, refreshes once and
    sends the request again. When a refresh moves the API host (Salesforce's instance_url), later requests
    to the old host go to the new one."""

    def __init__(
        self,
        inner: httpx.BaseTransport,
        tokens: TokenSource,
        refresh: TokenRefresh,
        base_of: Callable[["Connection"], str],
    ) -> None:
        self._inner = inner
        self._tokens = tokens
        self._refresh = refresh
        self._base_of = base_of
        self._moves: dict[str, str] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        connection = self._tokens.current()
        token = self._authorize(request, connection)
        response = self._inner.handle_request(request)
        if not self._refresh.is_expired(response):
            return response
        response.read()
        response.close()
        refreshed = self._tokens.after_rejection(token)
        old_base, new_base = self._base_of(connection), self._base_of(refreshed)
        if old_base != new_base:
            self._moves[old_base.rstrip("/")] = new_base.rstrip("/")
        self._authorize(request, refreshed)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()

    def _authorize(self, request: httpx.Request, connection: "Connection") -> str:
        token = connection.credentials.get("access_token")
        if not token:
            raise SyncError(f"connection {connection.connection_id!r} has no access_token after its refresh")
        request.headers["Authorization"] = f"Bearer {token}"
        url = str(request.url)
        for old, new in self._moves.items():
            if url.startswith(old) and not url.startswith(new):
                request.url = httpx.URL(new + url[len(old) :])
                request.headers["Host"] = request.url.netloc.decode("ascii")
        return str(token)
