"""API keys for integrations (manage_integrations)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from appliance.auth import apikeys
from appliance.auth.principal import Principal
from appliance.auth.roles import Permission
from appliance.web.deps import client_addr, instance, requires
from appliance.web.params import Id

router = APIRouter(prefix="/api/apikeys", tags=["api keys"])
MANAGE_INTEGRATIONS = requires(Permission.MANAGE_INTEGRATIONS)


class NewKey(BaseModel):
    name: str = Field(max_length=100)
    scopes: list[str] = Field(max_length=len(Permission))


def _public(key: apikeys.ApiKey) -> dict[str, Any]:
    return asdict(key)


@router.get("", summary="List API keys (never their secrets)")
def list_keys(request: Request, principal: Principal = MANAGE_INTEGRATIONS) -> list[dict[str, Any]]:
    return [_public(k) for k in apikeys.list_keys(instance(request).db, principal.org_id)]


@router.post("", status_code=201, summary="Create an API key; the token is shown only in this response")
def create_key(body: NewKey, request: Request, principal: Principal = MANAGE_INTEGRATIONS) -> dict[str, Any]:
    created = apikeys.create_key(
        instance(request).db, principal.context(client_addr(request)), principal.org_id, body.name, body.scopes,
        granter=principal.permissions,
    )  # fmt: skip
    return {**_public(created.key), "token": created.token}


@router.delete("/{key_id}", summary="Revoke an API key")
def revoke_key(key_id: Id, request: Request, principal: Principal = MANAGE_INTEGRATIONS) -> dict[str, Any]:
    ctx = principal.context(client_addr(request))
    return _public(apikeys.revoke_key(instance(request).db, ctx, principal.org_id, key_id))
