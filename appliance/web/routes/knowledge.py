"""Knowledge base articles (manage_knowledge_base) and the read-only help centre that citations link to."""

from __future__ import annotations

import html
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from appliance.auth.orgs import get_org_by_slug
from appliance.auth.principal import Principal
from appliance.auth.roles import Permission
from appliance.errors import InvalidValue
from appliance.knowledge import articles
from appliance.knowledge.importers import formats
from appliance.knowledge.render import render_markdown
from appliance.retrieval import flags
from appliance.answering import golden
from appliance.web.deps import client_addr, instance, knowledge_changed, public, requires
from appliance.web.params import Id, Page
from appliance.web.uploads import saved_upload

router = APIRouter(tags=["knowledge"])
MANAGE_KB = requires(Permission.MANAGE_KNOWLEDGE_BASE)
IMPORT_PATH = "/api/knowledge/import"  # its body limit is import_max_bytes (see BodySizeLimit), not max_body_bytes


class ArticleBody(BaseModel):
    title: str = Field(max_length=articles.MAX_TITLE)
    content: str = Field(max_length=articles.MAX_CONTENT)
    category: str = Field(default="", max_length=120)
    tags: list[str] = Field(default_factory=list, max_length=articles.MAX_TAGS)


class NewArticle(ArticleBody):
    external_id: str | None = Field(default=None, max_length=200)


class ArticleUpdate(ArticleBody):
    expected_version: Id | None = Field(default=None, description="409 when the article moved past this version")
    note: str = Field(default="edited", max_length=200)


class StatusChange(BaseModel):
    status: str = Field(max_length=20)
    override: bool = Field(default=False, description="Publish despite failing golden questions (admins only)")


def _draft(body: ArticleBody) -> articles.Draft:
    return articles.Draft(body.title, body.content, body.category, tuple(body.tags))


def _out(article: articles.Article) -> dict[str, Any]:
    return {**asdict(article), "has_unpublished_changes": article.has_unpublished_changes}


@router.get("/api/knowledge", summary="List articles (search, category, tag, status filters, pagination)")
def list_articles(
    request: Request,
    principal: Principal = MANAGE_KB,
    q: str | None = Query(default=None, max_length=200),
    category: str | None = Query(default=None, max_length=120),
    tag: str | None = Query(default=None, max_length=64),
    status: str | None = Query(default=None, max_length=20),
    page: Page = 1,
    per_page: int = Query(default=50, ge=1, le=200),
) -> dict[str, Any]:
    found = articles.list_articles(instance(request).db, principal.org_id, q, category, tag, status, page, per_page)
    return {"items": [_out(a) for a in found.items], "total": found.total, "page": page, "per_page": per_page}


@router.post("/api/knowledge", status_code=201, summary="Create an article (a draft)")
def create_article(body: NewArticle, request: Request, principal: Principal = MANAGE_KB) -> dict[str, Any]:
    ctx = principal.context(client_addr(request))
    article = articles.create_article(instance(request).db, ctx, principal.org_id, _draft(body), body.external_id)
    knowledge_changed(request, principal.org_id)
    return _out(article)


# Declared before /api/knowledge/{article_id}, which would otherwise take "flags" for an article id.
@router.get("/api/knowledge/flags", summary="Passages the injection scanner held out of the index, for review")
def list_flags(
    request: Request,
    principal: Principal = MANAGE_KB,
    status: str = Query(default="pending", max_length=20, description="pending, approved, rejected or all"),
    limit: int = Query(default=200, ge=1, le=1000),
) -> dict[str, Any]:
    found = flags.list_flags(instance(request).db, principal.org_id, None if status == "all" else status, limit)
    return {"items": [asdict(f) for f in found], "status": status}


@router.post("/api/knowledge/flags/{flag_id}/approve", summary="Approve a flagged passage: it is indexed next run")
def approve_flag(flag_id: Id, request: Request, principal: Principal = MANAGE_KB) -> dict[str, Any]:
    ctx = principal.context(client_addr(request))
    flag = flags.review_flag(instance(request).db, ctx, principal.org_id, flag_id, "approved")
    knowledge_changed(request, principal.org_id)
    return asdict(flag)


@router.post("/api/knowledge/flags/{flag_id}/reject", summary="Reject a flagged passage: it stays out of the index")
def reject_flag(flag_id: Id, request: Request, principal: Principal = MANAGE_KB) -> dict[str, Any]:
    ctx = principal.context(client_addr(request))
    flag = flags.review_flag(instance(request).db, ctx, principal.org_id, flag_id, "rejected")
    knowledge_changed(request, principal.org_id)
    return asdict(flag)


@router.get("/api/knowledge/{article_id}", summary="One article, its latest version and the rendered HTML")
def get_article(article_id: Id, request: Request, principal: Principal = MANAGE_KB) -> dict[str, Any]:
    article = articles.get_article(instance(request).db, principal.org_id, article_id)
    return {**_out(article), "html": render_markdown(article.latest.content)}


@router.put("/api/knowledge/{article_id}", summary="Save a new version")
def update_article(
    article_id: Id, body: ArticleUpdate, request: Request, principal: Principal = MANAGE_KB
) -> dict[str, Any]:
    ctx = principal.context(client_addr(request))
    article = articles.update_article(
        instance(request).db, ctx, principal.org_id, article_id, _draft(body), body.note, body.expected_version
    )
    knowledge_changed(request, principal.org_id)
    return _out(article)


@router.post("/api/knowledge/{article_id}/status", summary="Publish, archive or withdraw to draft")
def set_status(article_id: Id, body: StatusChange, request: Request, principal: Principal = MANAGE_KB) -> dict[str, Any]:
    ctx = principal.context(client_addr(request))
    inst = instance(request)
    may_override = Permission.CONFIGURE_AI in principal.permissions  # admins
    article, report = golden.set_status(inst.db, ctx, inst.answers, inst.staged_answers, principal.org_id, article_id,
                                        body.status, body.override, may_override)  # fmt: skip
    knowledge_changed(request, principal.org_id)
    return _out(article) | {"golden": report.public() if report.before else None}


@router.get("/api/knowledge/{article_id}/versions", summary="All versions, newest first")
def versions(article_id: Id, request: Request, principal: Principal = MANAGE_KB) -> list[dict[str, Any]]:
    return [asdict(v) for v in articles.list_versions(instance(request).db, principal.org_id, article_id)]


@router.get("/api/knowledge/{article_id}/diff", summary="Side-by-side diff of two versions")
def diff(
    article_id: Id, old: Id, new: Id, request: Request, principal: Principal = MANAGE_KB
) -> dict[str, Any]:
    return articles.diff_versions(instance(request).db, principal.org_id, article_id, old, new)


@router.post("/api/knowledge/{article_id}/versions/{version}/restore", summary="Restore a version (as a new one)")
def restore(article_id: Id, version: Id, request: Request, principal: Principal = MANAGE_KB) -> dict[str, Any]:
    ctx = principal.context(client_addr(request))
    article = articles.restore_version(instance(request).db, ctx, principal.org_id, article_id, version)
    knowledge_changed(request, principal.org_id)
    return _out(article)


_FLAGS = {"true": True, "1": True, "on": True, "false": False, "0": False, "off": False, "": False}
_IMPORT_FORM = {
    "required": True,
    "content": {"multipart/form-data": {"schema": {
        "type": "object",
        "required": ["file"],
        "properties": {
            "file": {"type": "string", "format": "binary", "description": "A zip (Notion, Confluence, or a folder of "
                     ".md or .html files), a .json or .jsonl (Help Scout, Zendesk), or a single .md or .html file."},
            "format": {"type": "string", "enum": list(formats.FORMATS), "default": "auto"},
            "dry_run": {"type": "boolean", "default": False},
        },
    }}},
}  # fmt: skip


def _flag(fields: dict[str, str], name: str) -> bool:
    value = fields.get(name, "").strip().lower()
    if value not in _FLAGS:
        raise InvalidValue(f"{name} must be true or false")
    return _FLAGS[value]


@router.post(
    IMPORT_PATH,
    summary="Import articles from an uploaded export; dry_run reports what would change and writes nothing",
    openapi_extra={"requestBody": _IMPORT_FORM},
)
async def import_articles(request: Request, principal: Principal = MANAGE_KB) -> dict[str, Any]:
    inst = instance(request)
    ctx = principal.context(client_addr(request))
    async with saved_upload(request, inst.paths.uploads) as upload:
        dry_run = _flag(upload.fields, "dry_run")
        fmt = upload.fields.get("format") or "auto"
        report = await run_in_threadpool(
            formats.import_path, inst.db, ctx, principal.org_id, upload.path, fmt, dry_run
        )
    counts = report.counts
    if not dry_run and counts["created"] + counts["updated"]:
        await run_in_threadpool(knowledge_changed, request, principal.org_id)
    return {"dry_run": report.dry_run, "counts": counts, "items": [asdict(item) for item in report.items]}


@router.get(
    "/help/{org_slug}/articles/{article_id}",
    response_class=HTMLResponse,
    dependencies=[Depends(public)],
    summary="The published version of an article, as a help-centre page",
)
def help_article(org_slug: str, article_id: Id, request: Request) -> HTMLResponse:
    db = instance(request).db
    org_id = get_org_by_slug(db, org_slug).id
    version = articles.published_version(db, org_id, article_id)
    articles.count_view(db, org_id, article_id)
    page = (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(version.title)}</title></head><body><main><article>"
        f"<h1>{html.escape(version.title)}</h1>{render_markdown(version.content)}</article></main></body></html>"
    )
    # The page is the organisation's own content, sanitised; it still gets no script at all.
    return HTMLResponse(page, headers={"Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'self'"})
