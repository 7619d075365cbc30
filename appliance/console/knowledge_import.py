"""The import wizard (/console/knowledge/import) and the passages held for review (/console/knowledge/flags).

Import: the file goes up with its format; the first step is always a dry run (nothing written) whose report says
what would be created, updated, left unchanged or fail and why; Apply sends the same file again without the dry
run. The upload is streamed to the data dir and deleted after the request, under import_max_bytes, exactly as
`POST /api/knowledge/import` does (same function, same limits); a file that cannot be read is a clear error and
changes nothing. With htmx the report replaces the form's report area and the chosen file stays selected for
Apply; htmx swaps only successful responses, so for htmx an unreadable upload's error comes back as a 200 fragment.

Flags: the injection scanner's held passages, approved (indexed on the next run) or rejected (kept out), through
the same function as /api/knowledge/flags/{id}/approve and /reject.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from appliance.auth.principal import Principal
from appliance.auth.roles import Permission
from appliance.console.render import ConsoleRoute, is_htmx, page, see_other
from appliance.errors import BadInput
from appliance.knowledge.importers import formats
from appliance.retrieval import flags
from appliance.web.deps import client_addr, instance, knowledge_changed, requires
from appliance.web.params import Id
from appliance.web.uploads import saved_upload

router = APIRouter(prefix="/console/knowledge", route_class=ConsoleRoute, include_in_schema=False)
MANAGE_KB = requires(Permission.MANAGE_KNOWLEDGE_BASE)
IMPORT_PATH = "/console/knowledge/import"  # streamed under import_max_bytes, like the API's import (web/app.py)
FLAGS_PATH = "/console/knowledge/flags"
FORMAT_LABELS = {
    "auto": "Tell from the file", "markdown": "Markdown (.md, or a zip of them)",
    "html": "HTML (.html, or a zip of them)",
    "notion": "Notion export (Markdown & CSV zip)", "confluence": "Confluence space export (HTML zip)",
    "helpscout": "Help Scout Docs (JSON)", "zendesk": "Zendesk Guide (articles.json)",
}  # fmt: skip


def _wizard(request: Request, principal: Principal, *, status: int = 200, **context: Any) -> Response:
    values: dict[str, Any] = {"report": None, "error": None, "format": "auto", "applied": False} | context
    if is_htmx(request):
        return page(request, "_import_report.html", principal, **values)
    return page(request, "knowledge_import.html", principal, status=status, page_name="knowledge",
                formats=FORMAT_LABELS, max_bytes=instance(request).settings.import_max_bytes, **values)  # fmt: skip


@router.get("/import")
def import_page(request: Request, principal: Principal = MANAGE_KB) -> Response:
    return _wizard(request, principal)


@router.post("/import")
async def import_upload(request: Request, principal: Principal = MANAGE_KB) -> Response:
    """A dry run unless the form says dry_run=false (the Apply button): nothing is written by accident."""
    inst = instance(request)
    ctx = principal.context(client_addr(request))
    fmt = "auto"
    try:
        async with saved_upload(request, inst.paths.uploads) as upload:
            fmt = upload.fields.get("format") or "auto"
            dry_run = upload.fields.get("dry_run", "true") != "false"
            report = await run_in_threadpool(formats.import_path, inst.db, ctx, principal.org_id, upload.path, fmt,
                                             dry_run)  # fmt: skip
    except BadInput as exc:
        status = 200 if is_htmx(request) else exc.status
        return _wizard(request, principal, status=status, error=exc.message, format=fmt)
    if not dry_run and report.counts["created"] + report.counts["updated"]:
        await run_in_threadpool(knowledge_changed, request, principal.org_id)
    items = [asdict(item) for item in report.items]
    return _wizard(request, principal, report={"counts": report.counts, "items": items}, format=fmt,
                   applied=not dry_run)  # fmt: skip


@router.get("/flags")
def flags_page(request: Request, principal: Principal = MANAGE_KB,
               status: Annotated[str, Query(max_length=20)] = "pending") -> Response:  # fmt: skip
    found = flags.list_flags(instance(request).db, principal.org_id, None if status == "all" else status)
    return page(request, "knowledge_flags.html", principal, page_name="knowledge", flags=found, chosen=status,
                statuses=(*flags.STATUSES, "all"))  # fmt: skip


def _review(request: Request, principal: Principal, flag_id: int, decision: flags.Status) -> Response:
    flags.review_flag(instance(request).db, principal.context(client_addr(request)), principal.org_id, flag_id,
                      decision)  # fmt: skip
    knowledge_changed(request, principal.org_id)
    return see_other(FLAGS_PATH)


@router.post("/flags/{flag_id}/approve")
def approve(flag_id: Id, request: Request, principal: Principal = MANAGE_KB) -> Response:
    return _review(request, principal, flag_id, "approved")


@router.post("/flags/{flag_id}/reject")
def reject(flag_id: Id, request: Request, principal: Principal = MANAGE_KB) -> Response:
    return _review(request, principal, flag_id, "rejected")
