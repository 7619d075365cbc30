"""The audit page (/console/audit) for compliance officers: search the organisation's trail by actor, event type and
date range (view_audit), verify its hash chain (view_audit), and download a signed export of a range
(export_audit). The same functions as the API's /api/audit routes do the work, so a search is audited as a read of
the trail and an export as an export, whichever was used.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, Response

from appliance.audit.events import AuditEvent
from appliance.auth import users
from appliance.auth.principal import Principal
from appliance.auth.roles import Permission
from appliance.console.render import ConsoleRoute, page
from appliance.errors import BadInput, InvalidValue, NotFound
from appliance.web.deps import instance, requires
from appliance.web.routes.audit import export_zip, search_events, verify_chain

router = APIRouter(prefix="/console/audit", route_class=ConsoleRoute, include_in_schema=False)
VIEW_AUDIT = requires(Permission.VIEW_AUDIT)
EXPORT_AUDIT = requires(Permission.EXPORT_AUDIT)
PAGE_SIZE = 100
Bound = Annotated[str, Query(max_length=40)]


def _event_names() -> list[str]:
    """Every event type the appliance records, for the filter's suggestions."""
    found: set[str] = set()
    todo = list(AuditEvent.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.name:
            found.add(cls.name)
    return sorted(found)


def _actor(request: Request, principal: Principal, actor: str) -> str | None:
    """The stored form of an actor: `user:12` as typed, or a member's email turned into it."""
    actor = actor.strip()
    if not actor:
        return None
    if "@" not in actor:
        return actor
    try:
        return f"user:{users.find_member_by_email(instance(request).db, principal.org_id, actor).id}"
    except NotFound:
        raise InvalidValue(f"actor: nobody in this organisation has the email {actor!r}") from None


def _filters(actor: str, action: str, since: str, until: str) -> dict[str, str]:
    return {"actor": actor, "action": action, "since": since, "until": until}


def _audit_page(request: Request, principal: Principal, filters: dict[str, str], offset: int = 0,
                verification: dict[str, Any] | None = None, status: int = 200,
                export_error: str | None = None) -> Response:  # fmt: skip
    error, events = None, []
    try:
        events = search_events(request, principal, filters["since"] or None, filters["until"] or None,
                               filters["action"].strip() or None, _actor(request, principal, filters["actor"]),
                               PAGE_SIZE, offset)  # fmt: skip
    except BadInput as exc:
        error, status = exc.message, exc.status
    query = {k: v for k, v in filters.items() if v}
    more = len(events) == PAGE_SIZE
    older = f"/console/audit?{urlencode({**query, 'offset': offset + PAGE_SIZE})}" if more else None
    return page(request, "audit.html", principal, status=status, filters=filters, events=events, error=error,
                older=older, offset=offset, verification=verification, export_error=export_error,
                event_names=_event_names(),
                may_export=Permission.EXPORT_AUDIT in principal.permissions)  # fmt: skip


@router.get("")
def audit_page(request: Request, principal: Principal = VIEW_AUDIT, actor: Bound = "", action: Bound = "",
               since: Bound = "", until: Bound = "",
               offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> Response:  # fmt: skip
    return _audit_page(request, principal, _filters(actor, action, since, until), offset)


@router.get("/verify")
def verify_page(request: Request, principal: Principal = VIEW_AUDIT) -> Response:
    """The chain's verification, above the newest events."""
    return _audit_page(request, principal, _filters("", "", "", ""), verification=verify_chain(request, principal))


@router.post("/export")
def export_page(request: Request, since: Annotated[str, Form(max_length=40)] = "",
                until: Annotated[str, Form(max_length=40)] = "",
                principal: Principal = EXPORT_AUDIT) -> Response:  # fmt: skip
    """A signed zip of [since, until): events.jsonl, the manifest, its signature and the public key to check it."""
    try:
        body = export_zip(request, principal, since or None, until or None)
    except BadInput as exc:
        return _audit_page(request, principal, _filters("", "", "", ""), status=exc.status, export_error=exc.message)
    name = f"audit-export-{(since or 'start')[:10]}-{(until or 'now')[:10]}.zip"
    disposition = f'attachment; filename="{name}"'
    return Response(body, media_type="application/zip", headers={"content-disposition": disposition})
