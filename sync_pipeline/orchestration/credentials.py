"""Keeping a connection's credentials fresh: refresh when due, once across runs and processes, and a refused
refresh marks the credentials failed (an `errors` entry and an `auth` webhook to the app).

Concurrent refreshes of one connection are serialised by a lease in its database row (a conditional UPDATE,
atomic on SQLite and PostgreSQL): the holder refreshes; the others wait, re-read the credentials and use the
new ones. A rotating refresh token is good for one use only, so it must be spent once.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from datetime import timedelta

import httpx

from sync_pipeline.sdk.declaration import Integration
from sync_pipeline.sdk.errors import SyncError
from sync_pipeline.sdk.http import RetryPolicy, RetryTransport
from sync_pipeline.sdk.oauth import CredentialsFailed, RefreshRefused, needs_refresh
from sync_pipeline.settings import WebhookSettings
from sync_pipeline.store import AUTH, Connection, Store, utcnow
from sync_pipeline.notifications.payloads import auth_refresh_failure_body

LEASE = timedelta(seconds=60)  # longer than a token endpoint's answer takes, retries included
POLL_SECONDS = 0.2
TOKEN_ENDPOINT_POLICY = RetryPolicy(attempts=3, max_wait=30.0)

log = logging.getLogger(__name__)


class CredentialKeeper:
    """The credentials of one connection, fresh: what a sync's HTTP client and `GET /connection` use."""

    def __init__(
        self,
        store: Store,
        integration: Integration,
        connection: Connection,
        *,
        settings: WebhookSettings | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.store = store
        self.integration = integration
        self.connection = connection
        self._settings = settings
        self._transport = transport
        self._owner = uuid.uuid4().hex
        self._checked = False

    @property
    def refreshable(self) -> bool:
        refresh = self.integration.refresh
        return refresh is not None and refresh.can_refresh(self.connection)

    def current(self) -> Connection:
        """The connection with a token fit to use: refreshed first when it expires within the margin."""
        if not self._checked:
            self._raise_if_failed()
            self._checked = True
        if self.refreshable and needs_refresh(self.connection.credentials, self.integration.refresh.margin):
            self.connection = self._refresh(stale=self.connection.credentials.get("access_token"), force=False)
        return self.connection

    def after_rejection(self, stale_token: str) -> Connection:
        """The provider refused `stale_token` as expired: a newer token (another run's, or a refresh's now)."""
        self.connection = self._refresh(stale=stale_token, force=False)
        return self.connection

    def force(self) -> Connection:
        """Refresh now, even if the token is fresh or the credentials were marked failed (a success clears that)."""
        if self.refreshable:
            self.connection = self._refresh(stale=None, force=True)
        return self.connection

    # -- the refresh ------------------------------------------------------------------------------

    def _refresh(self, stale: str | None, force: bool) -> Connection:
        deadline = time.monotonic() + LEASE.total_seconds() + 10
        while True:
            latest = self._reread()
            if not force and self._usable(latest, stale):
                return latest
            now = utcnow()
            if self.store.connections.try_lease(self.integration.name, latest.connection_id, self._owner, now, now + LEASE):
                try:
                    latest = self._reread()  # another run may have refreshed between our read and our lease
                    if not force and self._usable(latest, stale):
                        return latest
                    refreshed = self._exchange(latest)
                    if refreshed is not None:
                        return refreshed
                    continue  # the app imported new credentials meanwhile: look at those
                finally:
                    self.store.connections.release_lease(self.integration.name, latest.connection_id, self._owner)
            if time.monotonic() > deadline:
                raise SyncError(
                    f"{self.integration.name} connection {latest.connection_id!r}: another process has been "
                    f"refreshing its token for over {LEASE.total_seconds():.0f} s; the run will be tried again"
                )
            time.sleep(POLL_SECONDS)

    def _usable(self, latest: Connection, stale: str | None) -> bool:
        """Fresh credentials, other than the refused token; failed ones end the wait."""
        self._raise_if_failed()
        token = latest.credentials.get("access_token")
        return bool(token) and token != stale and not needs_refresh(latest.credentials, self.integration.refresh.margin)

    def _exchange(self, latest: Connection) -> Connection | None:
        """Spend the refresh grant and save the answer over the version read; None if that version is gone."""
        client = self.store.integration_credentials.get(self.integration.name)
        if client is None:
            raise SyncError(
                f"{self.integration.name} connection {latest.connection_id!r} needs a token refresh, but the "
                f"integration has no client credentials: set them with PATCH /integrations/{self.integration.name} "
                f"or `sync-pipeline integration-credentials {self.integration.name}`"
            )
        transport = RetryTransport(self._transport or httpx.HTTPTransport(), TOKEN_ENDPOINT_POLICY)
        with httpx.Client(transport=transport, timeout=httpx.Timeout(30.0, connect=10.0)) as http:
            try:
                refreshed = self.integration.refresh.refresh(
                    http, latest, client.credentials, self.integration.resolve_base_url(latest)
                )
            except RefreshRefused as refused:
                self._mark_failed(latest, refused.reason)
                raise CredentialsFailed(self._failure_message(latest.connection_id, refused.reason)) from None
            except httpx.TransportError as error:
                raise SyncError(f"the token endpoint could not be reached ({type(error).__name__}); try again") from None
        saved = self.store.connections.save_refreshed(latest, refreshed.credentials, refreshed.config, self._owner)
        if saved is not None:
            self.store.connection_errors.clear(self.integration.name, latest.connection_id, AUTH)
            log.info("refreshed the token of %s connection %s", self.integration.name, latest.connection_id)
        return saved

    def _reread(self) -> Connection:
        latest = self.store.connections.get(self.integration.name, self.connection.connection_id)
        if latest is None:
            raise SyncError(f"{self.integration.name} connection {self.connection.connection_id!r} was deleted")
        return latest

    # -- failure ----------------------------------------------------------------------------------

    def _raise_if_failed(self) -> None:
        failure = self.store.connection_errors.get(self.integration.name, self.connection.connection_id, AUTH)
        if failure is not None:
            raise CredentialsFailed(failure.message)

    def _failure_message(self, connection_id: str, reason: str) -> str:
        return (
            f"{self.integration.name} connection {connection_id!r}: the provider refused to refresh its token "
            f"({reason}); import new credentials (POST /connections) to resume its syncs"
        )

    def _mark_failed(self, connection: Connection, reason: str) -> None:
        """Record the failure for `GET /connections` and enqueue the `auth` webhook to the app, once per version."""
        message = self._failure_message(connection.connection_id, reason)
        self.store.connection_errors.record(self.integration.name, connection.connection_id, AUTH, message)
        settings = self._settings or WebhookSettings.from_env()
        destinations = settings.destinations(connection.webhook_url_override or settings.url)
        if not destinations:
            return
        body = auth_refresh_failure_body(
            connection.connection_id,
            self.integration.name,
            str(connection.credentials.get("type") or "OAUTH2"),
            message,
            connection.tags,
        )
        identity = f"{self.integration.name}/{connection.connection_id}/{connection.credentials_version}"
        delivery_id = "auth-" + hashlib.sha256(identity.encode()).hexdigest()[:40]
        for suffix, url in destinations:
            self.store.deliveries.enqueue(delivery_id + suffix, url, body)
