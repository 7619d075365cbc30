"""Users of the organisation and their roles (manage_team)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from appliance.auth import mfa, users
from appliance.auth.principal import Principal
from appliance.auth.roles import Permission
from appliance.web.deps import client_addr, instance, requires
from appliance.web.params import Id

router = APIRouter(prefix="/api/users", tags=["team"])
MANAGE_TEAM = requires(Permission.MANAGE_TEAM)


class NewUser(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)
    role: str = Field(max_length=40)
    name: str = Field(default="", max_length=200)


class RoleUpdate(BaseModel):
    role: str = Field(max_length=40)


@router.get("", summary="List the organisation's users")
def list_users(request: Request, principal: Principal = MANAGE_TEAM) -> list[dict[str, Any]]:
    return [asdict(m) for m in users.list_members(instance(request).db, principal.org_id)]


@router.post("", status_code=201, summary="Create a user with a role")
def create_user(body: NewUser, request: Request, principal: Principal = MANAGE_TEAM) -> dict[str, Any]:
    inst = instance(request)
    member = users.add_user(
        inst.db, inst.passwords, principal.context(client_addr(request)), principal.org_id, body.email,
        body.password, body.role, body.name,
    )  # fmt: skip
    return asdict(member)


@router.get("/{user_id}", summary="One user of the organisation")
def get_user(user_id: Id, request: Request, principal: Principal = MANAGE_TEAM) -> dict[str, Any]:
    return asdict(users.get_member(instance(request).db, principal.org_id, user_id))


@router.put("/{user_id}/role", summary="Change a user's role")
def set_role(user_id: Id, body: RoleUpdate, request: Request, principal: Principal = MANAGE_TEAM) -> dict[str, Any]:
    ctx = principal.context(client_addr(request))
    return asdict(users.set_role(instance(request).db, ctx, principal.org_id, user_id, body.role))


@router.post("/{user_id}/disable", summary="Disable a user and end their sessions")
def disable(user_id: Id, request: Request, principal: Principal = MANAGE_TEAM) -> dict[str, Any]:
    ctx = principal.context(client_addr(request))
    return asdict(users.disable_user(instance(request).db, ctx, principal.org_id, user_id))


@router.delete("/{user_id}/mfa", summary="Reset a user's two-step verification (a lost device); they enrol again")
def reset_mfa(user_id: Id, request: Request, principal: Principal = MANAGE_TEAM) -> dict[str, Any]:
    inst = instance(request)
    users.get_member(inst.db, principal.org_id, user_id)  # NotFound outside the organisation
    removed = mfa.disable(inst.db, principal.context(client_addr(request)), user_id, reset=True)
    return {"reset": removed}
