"""`acme`: an integration declared in the tests the way users declare theirs, against the fake AcmeApi."""

from __future__ import annotations

from pydantic import BaseModel

from sync_pipeline.sdk import (
    CursorPagination,
    Integration,
    Registry,
    SyncContext,
    UnknownWebhookConnection,
    ProviderWebhookContext,
    WebhookRejected,
)

acme = Integration("acme", base_url="https://api.acme.invalid")


class AcmeContact(BaseModel):
    id: str
    name: str
    email: str
    updated_at: str


class AcmeLead(BaseModel):
    id: str
    name: str
    updated_at: str


class AcmeEmail(BaseModel):
    id: str
    address: str


class AcmeDomain(BaseModel):
    id: str


PAGES = CursorPagination(cursor_path="next", cursor_param="cursor", limit_param="limit", limit=2)


@acme.sync(models=[AcmeContact], sync_type="full", track_deletes=True, frequency="every hour")
def contacts(ctx: SyncContext) -> None:
    """Every contact, two per page, checkpointing after each page."""
    checkpoint = ctx.get_checkpoint() or {}
    for page in ctx.paginate("/contacts", PAGES, data_path="items", start=checkpoint.get("cursor")):
        ctx.batch_save(page, AcmeContact)
        if page.next:
            ctx.save_checkpoint({"cursor": page.next})
    ctx.clear_checkpoint()


@acme.sync(models=[AcmeLead], sync_type="incremental", frequency="every 5 minutes")
def leads(ctx: SyncContext) -> None:
    """Contacts changed since the last run, as leads."""
    params = {"updated_since": ctx.last_sync_date.isoformat()} if ctx.last_sync_date else {}
    for page in ctx.paginate("/contacts", PAGES, params=params, data_path="items"):
        ctx.batch_save([{"id": c["id"], "name": c["name"], "updated_at": c["updated_at"]} for c in page], AcmeLead)


@acme.sync(models=[AcmeEmail, AcmeDomain], name="directory", auto_start=False)
def directory(ctx: SyncContext) -> None:
    """Addresses and their domains, limited to this variant's domain (metadata[variant]["domain"])."""
    domain = (ctx.get_metadata().get(ctx.variant) or {}).get("domain")
    for page in ctx.paginate("/contacts", PAGES, data_path="items"):
        emails = [{"id": c["id"], "address": c["email"]} for c in page]
        emails = [e for e in emails if not domain or e["address"].endswith("@" + domain)]
        ctx.batch_save(emails, AcmeEmail)
        ctx.batch_save([{"id": e["address"].split("@")[1]} for e in emails], AcmeDomain)


registry = Registry.of(acme)


WEBHOOK_SECRET = "acme-webhook-secret"


@acme.webhook
def on_webhook(ctx: ProviderWebhookContext) -> None:
    """`{"connection_id", "action": "upsert"|"delete", "contact": {...}}`, authenticated by `X-Acme-Secret`."""
    if ctx.headers.get("x-acme-secret") != WEBHOOK_SECRET:
        raise WebhookRejected("X-Acme-Secret is missing or wrong", status=401)
    event = ctx.json()
    if not isinstance(event, dict) or not isinstance(event.get("contact"), dict):
        raise WebhookRejected("an acme event needs a `contact` object", status=400)
    connection = next((c for c in ctx.connections() if c.connection_id == event.get("connection_id")), None)
    if connection is None:
        raise UnknownWebhookConnection(f"no acme connection {event.get('connection_id')!r}")
    ctx.use_connection(connection)
    if event.get("action") == "delete":
        ctx.batch_delete([event["contact"]], AcmeContact)
    else:
        ctx.batch_save([event["contact"]], AcmeContact)
