"""The audit trail for compliance officers: search (view_audit), verify (view_audit), signed export
(export_audit). Each sees only their organisation's chain; reading the trail is itself audited."""

from __future__ import annotations

import io
import tempfile
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from appliance import audit
from appliance.audit.chain import search
from appliance.audit.events import AuditExported, AuditTrailRead
from appliance.audit.export import export, normalise_bound
from appliance.auth.principal import Principal
from appliance.auth.roles import Permission
from appliance.web.deps import client_addr, instance, requires
from appliance.web.params import Count

router = APIRouter(prefix="/api/audit", tags=["audit"])
VIEW_AUDIT = requires(Permission.VIEW_AUDIT)
EXPORT_AUDIT = requires(Permission.EXPORT_AUDIT)


class ExportRequest(BaseModel):
    since: str | None = Field(default=None, max_length=40)
    until: str | None = Field(default=None, max_length=40)


@router.get("/events", summary="Search the organisation's audit events, newest first")
def events(
    request: Request,
    principal: Principal = VIEW_AUDIT,
    since: str | None = Query(default=None, max_length=40),
    until: str | None = Query(default=None, max_length=40),
    action: str | None = Query(default=None, max_length=80),
    actor: str | None = Query(default=None, max_length=80, description="user:12, apikey:3, cli:root or system"),
    limit: int = Query(default=100, ge=1, le=1000),
    offset: Count = 0,
) -> list[dict[str, Any]]:
    return search_events(request, principal, since, until, action, actor, limit, offset)


def search_events(request: Request, principal: Principal, since: str | None, until: str | None, action: str | None,
                  actor: str | None, limit: int, offset: int) -> list[dict[str, Any]]:  # fmt: skip
    """The organisation's events matching the filters, newest first; the search itself is audited (the API and the
    console both search here)."""
    db = instance(request).db
    found = search(db, principal.org_id, normalise_bound(since, "since"), normalise_bound(until, "until"), action,
                   limit, offset, actor)  # fmt: skip
    query = {"since": since, "until": until, "action": action, "limit": limit, "offset": offset}
    if actor is not None:
        query["actor"] = actor
    audit.record_alone(db, principal.context(client_addr(request)), AuditTrailRead(query, len(found)))
    return found


@router.get("/verify", summary="Verify the organisation's hash chain")
def verify(request: Request, principal: Principal = VIEW_AUDIT) -> dict[str, Any]:
    return verify_chain(request, principal)


def verify_chain(request: Request, principal: Principal) -> dict[str, Any]:
    """Walk the organisation's chain: ok, the number of events, and the first break when there is one."""
    result = audit.verify(instance(request).db, chain=principal.org_id)
    return {
        "ok": result.ok,
        "events": result.events,
        "first_break": None if result.first_break is None else {**asdict(result.first_break), "text": str(result.first_break)},
    }


@router.post("/export", summary="Signed export of a time range, as a zip (events.jsonl, manifest, signature)")
def export_range(body: ExportRequest, request: Request, principal: Principal = EXPORT_AUDIT) -> Response:
    return Response(
        export_zip(request, principal, body.since, body.until),
        media_type="application/zip",
        headers={"content-disposition": 'attachment; filename="audit-export.zip"'},
    )


def export_zip(request: Request, principal: Principal, since: str | None, until: str | None) -> bytes:
    """The organisation's events in [since, until) signed and zipped (events.jsonl, manifest, signature, public
    key); the export is audited. The API and the console both export here."""
    inst = instance(request)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "export"
        result = export(inst.db, inst.signing_key(), out, since, until, org_ids=[principal.org_id])
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(out.iterdir()):
                zf.write(path, path.name)
    audit.record_alone(
        inst.db,
        principal.context(client_addr(request)),
        AuditExported(since, until, result.events, result.manifest_sha256),
    )
    return buffer.getvalue()
