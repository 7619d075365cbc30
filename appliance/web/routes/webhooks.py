"""Outbound webhooks (manage_integrations): the hooks, their secrets (shown once), and the delivery log."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from appliance.auth.principal import Principal
from appliance.auth.roles import Permission
from appliance.web.params import Id
from appliance.webhooks import manage
from appliance.webhooks.outbox import EVENTS
from appliance.web.deps import client_addr, instance, requires

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])
MANAGE_INTEGRATIONS = requires(Permission.MANAGE_INTEGRATIONS)


class NewWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=manage.MAX_URL_CHARS, description="http:// or https:// URL that receives the events")
    events: list[str] = Field(max_length=len(EVENTS), description=f"Any of: {', '.join(EVENTS)}")
    active: bool = True


class WebhookChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(default=None, max_length=manage.MAX_URL_CHARS)
    events: list[str] | None = Field(default=None, max_length=len(EVENTS))
    active: bool | None = None


def _public(hook: manage.Webhook) -> dict[str, Any]:
    return asdict(hook)


def _delivery(d: manage.Delivery) -> dict[str, Any]:
    out = asdict(d)
    out.pop("payload")  # the log never shows payloads: they may quote customers
    return out


@router.get("", summary="List the organisation's webhooks (never their secrets)")
def list_webhooks(request: Request, principal: Principal = MANAGE_INTEGRATIONS) -> list[dict[str, Any]]:
    return [_public(h) for h in manage.list_webhooks(instance(request).db, principal.org_id)]


@router.post("", status_code=201, summary="Create a webhook; its signing secret is shown only in this response")
def create_webhook(body: NewWebhook, request: Request, principal: Principal = MANAGE_INTEGRATIONS) -> dict[str, Any]:
    ctx = principal.context(client_addr(request))
    hook, secret = manage.create(instance(request).db, ctx, principal.org_id, body.url, body.events, body.active)
    return {**_public(hook), "secret": secret}


@router.put("/{webhook_id}", summary="Change a webhook's URL, events or whether it is active")
def update_webhook(
    webhook_id: Id, body: WebhookChange, request: Request, principal: Principal = MANAGE_INTEGRATIONS
) -> dict[str, Any]:
    ctx = principal.context(client_addr(request))
    hook = manage.update(instance(request).db, ctx, principal.org_id, webhook_id,
                         url=body.url, events=body.events, active=body.active)  # fmt: skip
    return _public(hook)


@router.delete("/{webhook_id}", status_code=204, summary="Delete a webhook and its delivery log")
def delete_webhook(webhook_id: Id, request: Request, principal: Principal = MANAGE_INTEGRATIONS) -> None:
    manage.delete(instance(request).db, principal.context(client_addr(request)), principal.org_id, webhook_id)


@router.post("/{webhook_id}/rotate-secret", summary="Replace a webhook's signing secret; the new one is shown once")
def rotate_secret(webhook_id: Id, request: Request, principal: Principal = MANAGE_INTEGRATIONS) -> dict[str, Any]:
    ctx = principal.context(client_addr(request))
    hook, secret = manage.rotate_secret(instance(request).db, ctx, principal.org_id, webhook_id)
    return {**_public(hook), "secret": secret}


@router.get("/{webhook_id}/deliveries", summary="A webhook's delivery log, newest first (no payloads)")
def list_deliveries(
    webhook_id: Id,
    request: Request,
    principal: Principal = MANAGE_INTEGRATIONS,
    limit: int = Query(default=100, ge=1, le=manage.MAX_LOG_ROWS),
) -> list[dict[str, Any]]:
    return [_delivery(d) for d in manage.deliveries(instance(request).db, principal.org_id, webhook_id, limit)]


@router.post("/deliveries/{delivery_id}/redeliver", summary="Try a failed delivery again, with a fresh set of attempts")
def redeliver(delivery_id: Id, request: Request, principal: Principal = MANAGE_INTEGRATIONS) -> dict[str, Any]:
    ctx = principal.context(client_addr(request))
    manage.redeliver(instance(request).db, ctx, principal.org_id, delivery_id)
    request.app.state.tasks.deliver_webhooks()
    return _delivery(manage.get_delivery(instance(request).db, principal.org_id, delivery_id))
