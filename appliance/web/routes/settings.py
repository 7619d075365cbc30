"""Organisation settings (manage_settings)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from appliance.auth import orgs
from appliance.auth.principal import Principal
from appliance.auth.roles import Permission
from appliance.web.deps import client_addr, instance, requires

router = APIRouter(prefix="/api/settings", tags=["settings"])
MANAGE_SETTINGS = requires(Permission.MANAGE_SETTINGS)


class SettingsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)
    timezone: str | None = Field(default=None, max_length=64)
    support_email: str | None = Field(default=None, max_length=320)
    answer_threshold: int | None = Field(
        default=None, ge=0, le=100, description="Confidence (0-100) below which answers are refused and handed over."
    )


@router.get("", summary="The organisation's settings")
def get_settings(request: Request, principal: Principal = MANAGE_SETTINGS) -> dict[str, Any]:
    return asdict(orgs.get_org(instance(request).db, principal.org_id))


@router.put("", summary="Change the organisation's settings")
def put_settings(body: SettingsUpdate, request: Request, principal: Principal = MANAGE_SETTINGS) -> dict[str, Any]:
    changes = body.model_dump(exclude_none=True)
    ctx = principal.context(client_addr(request))
    return asdict(orgs.update_org_settings(instance(request).db, ctx, principal.org_id, changes))
