"""The team page (/console/team): people, teams, agents and API keys, each part shown to those whose permission the
matching API route asks for. Users (create with a role, change a role, disable): manage_team, as /api/users. Teams
(members, business hours) and agents' capacity: manage_team or manage_agents, as /api/teams and /api/agents. API
keys (create, shown once; revoke): manage_integrations, as /api/apikeys.

A refused form comes back with the domain's message; the domain functions validate, audit and (for capacity)
publish over the hub exactly as the API does.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response

from appliance.auth import apikeys, mfa, users
from appliance.auth.principal import Principal
from appliance.auth.roles import Permission, Role
from appliance.console.render import ConsoleRoute, page, see_other
from appliance.conversations import routing
from appliance.errors import BadInput, Conflict, NotFound
from appliance.web.deps import client_addr, instance, requires, requires_any
from appliance.web.params import Id
from appliance.web.routes.conversations import publish

router = APIRouter(prefix="/console/team", route_class=ConsoleRoute, include_in_schema=False)
P = Permission
MANAGE_TEAM = requires(P.MANAGE_TEAM)
MANAGE_EITHER = requires_any(P.MANAGE_TEAM, P.MANAGE_AGENTS)
MANAGE_INTEGRATIONS = requires(P.MANAGE_INTEGRATIONS)
PATH = "/console/team"
Refused = (BadInput, Conflict)


def _page(request: Request, principal: Principal, *, status: int = 200, errors: dict[str, str] | None = None,
          created_token: str | None = None) -> Response:  # fmt: skip
    db, held = instance(request).db, principal.permissions
    agents = routing.list_agents(db, principal.org_id)
    context: dict[str, Any] = {
        "members": users.list_members(db, principal.org_id) if P.MANAGE_TEAM in held else None,
        "teams": routing.list_teams(db, principal.org_id), "agents": agents,
        "agent_names": {a.user_id: a.name or a.email for a in agents},
        "api_keys": apikeys.list_keys(db, principal.org_id) if P.MANAGE_INTEGRATIONS in held else None,
        "roles": [r.value for r in Role], "days": routing.DAYS, "scopes": sorted(p.value for p in held),
        "errors": errors or {}, "created_token": created_token, "hours_text": _hours_text,
    }  # fmt: skip
    return page(request, "team.html", principal, status=status, **context)


def _refused(request: Request, principal: Principal, part: str, exc: BadInput | Conflict | NotFound) -> Response:
    return _page(request, principal, status=exc.status, errors={part: exc.message})


@router.get("")
def team_page(request: Request, principal: Principal = MANAGE_EITHER) -> Response:
    return _page(request, principal)


@router.post("/users")
def create_user(request: Request, email: Annotated[str, Form(max_length=320)],
                password: Annotated[str, Form(max_length=1024)], role: Annotated[str, Form(max_length=40)],
                name: Annotated[str, Form(max_length=200)] = "",
                principal: Principal = MANAGE_TEAM) -> Response:  # fmt: skip
    """A new person with a role, as POST /api/users creates them (they sign in with this password)."""
    inst = instance(request)
    try:
        users.add_user(inst.db, inst.passwords, principal.context(client_addr(request)), principal.org_id, email,
                       password, role, name)  # fmt: skip
    except Refused as exc:
        return _refused(request, principal, "users", exc)
    return see_other(f"{PATH}#users")


@router.post("/users/{user_id}/role")
def set_role(user_id: Id, request: Request, role: Annotated[str, Form(max_length=40)],
             principal: Principal = MANAGE_TEAM) -> Response:  # fmt: skip
    try:
        users.set_role(instance(request).db, principal.context(client_addr(request)), principal.org_id, user_id, role)
    except Refused as exc:
        return _refused(request, principal, "users", exc)
    return see_other(f"{PATH}#users")


@router.post("/users/{user_id}/disable")
def disable_user(user_id: Id, request: Request, principal: Principal = MANAGE_TEAM) -> Response:
    """Disabled people cannot sign in, and their sessions end at once."""
    try:
        users.disable_user(instance(request).db, principal.context(client_addr(request)), principal.org_id, user_id)
    except Refused as exc:
        return _refused(request, principal, "users", exc)
    return see_other(f"{PATH}#users")


@router.post("/users/{user_id}/mfa-reset")
def reset_mfa(user_id: Id, request: Request, principal: Principal = MANAGE_TEAM) -> Response:
    """A lost device: their two-step verification is removed (audited) and they set it up again."""
    db = instance(request).db
    try:
        users.get_member(db, principal.org_id, user_id)
    except NotFound as exc:
        return _refused(request, principal, "users", exc)
    mfa.disable(db, principal.context(client_addr(request)), user_id, reset=True)
    return see_other(f"{PATH}#users")


def _hours_text(hours: dict[str, Any], day: str) -> str:
    """A day's opening hours as the form shows them: "09:00-12:00, 13:00-17:00"."""
    return ", ".join(f"{a}-{b}" for a, b in hours.get("days", {}).get(day, []))


def _hours(timezone: str, days: dict[str, str]) -> dict[str, Any]:
    """Business hours from the form; no hours on any day means always open ({})."""
    spans = {day: [[t.strip() for t in part.split("-", 1)] for part in text.split(",") if part.strip()]
             for day, text in days.items() if text.strip()}  # fmt: skip
    if not spans:
        return {}
    return {"timezone": timezone.strip() or "UTC", "days": spans}


Hours = Annotated[str, Form(max_length=200)]


def day_hours(hours_mon: Hours = "", hours_tue: Hours = "", hours_wed: Hours = "", hours_thu: Hours = "",
              hours_fri: Hours = "", hours_sat: Hours = "", hours_sun: Hours = "") -> dict[str, str]:  # fmt: skip
    """The seven day fields of a team's form (one text field a day)."""
    given = (hours_mon, hours_tue, hours_wed, hours_thu, hours_fri, hours_sat, hours_sun)
    return dict(zip(routing.DAYS, given, strict=True))


def _save_team(request: Request, principal: Principal, team_id: int | None, name: str, members: list[int],
               timezone: str, days: dict[str, str], out_of_hours_message: str,
               is_default: bool) -> Response:  # fmt: skip
    try:
        routing.save_team(instance(request).db, principal.context(client_addr(request)), principal.org_id, name,
                          members, _hours(timezone, days), out_of_hours_message, is_default, team_id)  # fmt: skip
    except Refused as exc:
        return _refused(request, principal, f"team-{team_id or 'new'}", exc)
    return see_other(f"{PATH}#teams")


TeamName = Annotated[str, Form(max_length=80)]
Members = Annotated[list[Id], Form()]
Zone = Annotated[str, Form(max_length=64)]
Message = Annotated[str, Form(max_length=1000)]
Flag = Annotated[bool, Form()]


@router.post("/teams")
def create_team(request: Request, name: TeamName, members: Members = [], timezone: Zone = "",  # noqa: B006
                out_of_hours_message: Message = "", is_default: Flag = False,
                days: dict[str, str] = Depends(day_hours),
                principal: Principal = MANAGE_EITHER) -> Response:  # fmt: skip
    return _save_team(request, principal, None, name, members, timezone, days, out_of_hours_message, is_default)


@router.post("/teams/{team_id}")
def update_team(team_id: Id, request: Request, name: TeamName, members: Members = [],  # noqa: B006
                timezone: Zone = "", out_of_hours_message: Message = "", is_default: Flag = False,
                days: dict[str, str] = Depends(day_hours),
                principal: Principal = MANAGE_EITHER) -> Response:  # fmt: skip
    return _save_team(request, principal, team_id, name, members, timezone, days, out_of_hours_message, is_default)


@router.post("/agents/{user_id}")
def set_capacity(user_id: Id, request: Request, capacity: Annotated[int, Form(ge=0, le=100)],
                 principal: Principal = MANAGE_EITHER) -> Response:  # fmt: skip
    """How many open conversations routing gives the agent at once, as PUT /api/agents/{id} sets it."""
    _, events = instance(request).flow.set_availability(principal.context(client_addr(request)), principal.org_id,
                                                        user_id, None, capacity)  # fmt: skip
    publish(request, events)
    return see_other(f"{PATH}#agents")


@router.post("/apikeys")
def create_api_key(request: Request, name: Annotated[str, Form(max_length=100)],
                   scopes: Annotated[list[str], Form(max_length=len(Permission))] = [],  # noqa: B006
                   principal: Principal = MANAGE_INTEGRATIONS) -> Response:  # fmt: skip
    """The token is on the page this answers with, and never shown again (only its digest is kept)."""
    try:
        created = apikeys.create_key(instance(request).db, principal.context(client_addr(request)), principal.org_id,
                                     name, scopes, granter=principal.permissions)  # fmt: skip
    except Refused as exc:
        return _refused(request, principal, "apikeys", exc)
    return _page(request, principal, created_token=created.token)


@router.post("/apikeys/{key_id}/revoke")
def revoke_api_key(key_id: Id, request: Request, principal: Principal = MANAGE_INTEGRATIONS) -> Response:
    apikeys.revoke_key(instance(request).db, principal.context(client_addr(request)), principal.org_id, key_id)
    return see_other(f"{PATH}#apikeys")
