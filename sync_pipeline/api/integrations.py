"""Integrations: list and read them, and set their OAuth client credentials (`PATCH /integrations/{key}`, as Nango).

Client secrets and private keys are stored sealed and never answered: a read shows the client id or app id only.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from pydantic import BaseModel, Field, field_validator
from starlette.routing import Route

from sync_pipeline.api.endpoint import Call, endpoint
from sync_pipeline.api.errors import ApiError
from sync_pipeline.api.fields import Lenient, ProviderConfigKey
from sync_pipeline.sdk.declaration import Integration
from sync_pipeline.sdk.oauth import GithubAppRefresh
from sync_pipeline.store import IntegrationCredentials

Secret = Annotated[str, Field(min_length=1, max_length=10_000)]


class OAuthClient(Lenient):
    type: Literal["OAUTH2"]
    client_id: str = Field(min_length=1, max_length=1000)
    client_secret: Secret
    scopes: str | None = None
    webhook_secret: str | None = None


class AppClient(Lenient):
    type: Literal["APP"]
    app_id: str | int
    private_key: Secret
    app_link: str | None = None

    @field_validator("app_id")
    @classmethod
    def _app_id(cls, value: str | int) -> str:
        if not str(value).strip():
            raise ValueError("app_id is empty")
        return str(value)

    @field_validator("private_key")
    @classmethod
    def _pem(cls, value: str) -> str:
        try:
            load_pem_private_key(value.encode(), password=None)
        except (ValueError, TypeError):
            # Never echo the key: pydantic's message would include the input.
            raise ValueError("private_key must be an unencrypted PEM private key (-----BEGIN ... PRIVATE KEY-----)") from None
        return value


ClientCredentials = Annotated[OAuthClient | AppClient, Field(discriminator="type")]


class PatchBody(Lenient):
    credentials: ClientCredentials


class IntegrationPath(Lenient):
    provider_config_key: ProviderConfigKey


class IncludeQuery(Lenient):
    include: str | None = None  # `credentials`: add the client id or app id (never a secret)


class IntegrationAnswer(BaseModel):
    """Nango's ApiPublicIntegration; `credentials` only with `include=credentials`, its secrets always null."""

    unique_key: str
    provider: str
    display_name: str
    logo: str
    forward_webhooks: bool
    created_at: str | None
    updated_at: str | None
    credentials: dict[str, Any] | None = None


class OneIntegration(BaseModel):
    data: IntegrationAnswer


class IntegrationList(BaseModel):
    data: list[IntegrationAnswer]


@endpoint(response=IntegrationList)
def list_integrations(call: Call) -> dict[str, Any]:
    """List the integrations."""
    store = call.services.store.integration_credentials
    integrations = call.services.registry.integrations.values()
    return {"data": [public(integration, store.get(integration.name), include=set()) for integration in integrations]}


@endpoint(path=IntegrationPath, query=IncludeQuery, response=OneIntegration)
def get_integration(call: Call) -> dict[str, Any]:
    """One integration; `include=credentials` adds the client id (or app id), never a secret."""
    integration = call.services.integration(call.parse_path().provider_config_key)
    include = {part.strip() for part in (call.parse_query().include or "").split(",")}
    found = call.services.store.integration_credentials.get(integration.name)
    return {"data": public(integration, found, include=include)}


@endpoint(path=IntegrationPath, body=PatchBody, response=OneIntegration)
def update_integration(call: Call) -> dict[str, Any]:
    """Set the integration's OAuth client credentials (client id and secret, or a GitHub App's id and private key)."""
    integration = call.services.integration(call.parse_path().provider_config_key)
    body: PatchBody = call.parse_body()
    mismatch = client_type_mismatch(integration, body.credentials.type)
    if mismatch:
        raise ApiError(400, "invalid_body", mismatch, [{"code": "invalid_type", "message": mismatch, "path": ["credentials", "type"]}])
    stored = call.services.store.integration_credentials.put(integration.name, body.credentials.model_dump(exclude_none=True))
    return {"data": public(integration, stored, include={"credentials"})}


def client_type_mismatch(integration: Integration, kind: str) -> str | None:
    """Why `kind` of client credentials does not fit the integration's refresh (a GitHub App takes APP), or None."""
    wanted = "APP" if isinstance(integration.refresh, GithubAppRefresh) else "OAUTH2"
    if kind == wanted:
        return None
    return f"integration {integration.name!r} takes client credentials of type {wanted}, not {kind}"


def public(integration: Integration, stored: IntegrationCredentials | None, *, include: set[str]) -> dict[str, Any]:
    """Nango's ApiPublicIntegration; `credentials` (with `include=credentials`) shows no secret."""
    answer: dict[str, Any] = {
        "unique_key": integration.name,
        "provider": integration.name,
        "display_name": integration.description or integration.name,
        "logo": "",
        "forward_webhooks": integration.webhook_handler is not None,
        "created_at": stored.created_at if stored else None,
        "updated_at": stored.updated_at if stored else None,
    }
    if "credentials" in include:
        answer["credentials"] = _without_secrets(stored.credentials) if stored else None
    return answer


def _without_secrets(credentials: dict[str, Any]) -> dict[str, Any]:
    if credentials.get("type") == "APP":
        return {"type": "APP", "app_id": credentials.get("app_id"), "private_key": None, "app_link": credentials.get("app_link")}
    return {
        "type": credentials.get("type"),
        "client_id": credentials.get("client_id"),
        "client_secret": None,
        "scopes": credentials.get("scopes"),
        "webhook_secret": None,
    }


def routes() -> list[Route]:
    return [
        Route("/integrations", list_integrations, methods=["GET"]),
        Route("/integrations/{provider_config_key}", get_integration, methods=["GET"]),
        Route("/integrations/{provider_config_key}", update_integration, methods=["PATCH"]),
    ]
