"""Organisation settings (manage_settings)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from appliance.auth import orgs
from appliance.auth.principal import Principal
from appliance.auth.roles import Permission
from appliance.web.deps import client_addr, instance, requires
from appliance.web.params import Id

router = APIRouter(prefix="/api/settings", tags=["settings"])
MANAGE_SETTINGS = requires(Permission.MANAGE_SETTINGS)


class SettingsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)
    timezone: str | None = Field(default=None, max_length=64)
    support_email: str | None = Field(default=None, max_length=320)
    answer_threshold: int | None = Field(
        default=None, ge=0, le=100, description="Confidence (0-100) below which answers are refused."
    )
    emergency_terms: list[str] | None = Field(
        default=None, max_length=50, description="Extra phrases that make a message urgent (on top of the built-in list)."
    )
    emergency_article_id: Id | None = Field(
        default=None, description="The article whose passage is the emergency guidance (null: found by its title/tags)."
    )
    answer_while_waiting: StrictBool | None = Field(
        default=None, description="While a conversation waits for a person, the assistant still sends confident answers."
    )


@router.get("", summary="The organisation's settings")
def get_settings(request: Request, principal: Principal = MANAGE_SETTINGS) -> dict[str, Any]:
    return asdict(orgs.get_org(instance(request).db, principal.org_id))


@router.put("", summary="Change the organisation's settings")
def put_settings(body: SettingsUpdate, request: Request, principal: Principal = MANAGE_SETTINGS) -> dict[str, Any]:
    # Fields left out change nothing; emergency_article_id may be set to null to clear it.
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items()
               if v is not None or k == "emergency_article_id"}  # fmt: skip
    ctx = principal.context(client_addr(request))
    return asdict(orgs.update_org_settings(instance(request).db, ctx, principal.org_id, changes))
