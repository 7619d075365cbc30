"""The knowledge editor's pages (/console/knowledge): the article list with search, filters and pages (htmx swaps the
list in place), a new article, and the article page: the markdown editor with its live preview (the help centre's
own renderer and sanitiser, on the server), saving a new version, publishing, archiving and withdrawing through
the golden-question gate (a blocked change shows the questions it breaks), the article's golden questions, and
what the answers say about it.

Every action calls the functions behind /api/knowledge and /api/knowledge/golden, with the same permission
(manage_knowledge_base); the preview, which changes nothing, is open to edit_articles too.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse

from appliance.analytics.article_usage import ArticleUsage, article_usage
from appliance.answering import golden
from appliance.auth.principal import Principal
from appliance.auth.roles import Permission
from appliance.console.render import ConsoleRoute, is_htmx, page, see_other
from appliance.errors import Conflict, InvalidValue, NotFound, PublishBlocked
from appliance.knowledge import articles
from appliance.knowledge.render import render_markdown
from appliance.web.deps import client_addr, instance, knowledge_changed, requires, requires_any
from appliance.web.params import Id, Page

router = APIRouter(prefix="/console/knowledge", route_class=ConsoleRoute, include_in_schema=False)
P = Permission
MANAGE_KB = requires(P.MANAGE_KNOWLEDGE_BASE)
PATH = "/console/knowledge"
LIST_ID = "article-list"
PER_PAGE = 25
ACTIONS = {"published": "Publish", "archived": "Archive", "draft": "Back to draft"}
Text = Annotated[str, Form(max_length=articles.MAX_CONTENT)]
Title = Annotated[str, Form(max_length=articles.MAX_TITLE)]
Short = Annotated[str, Form(max_length=2000)]


def article_url(article_id: int, anchor: str = "") -> str:
    return f"{PATH}/{article_id}" + (f"#{anchor}" if anchor else "")


def _tags(text: str) -> tuple[str, ...]:
    return tuple(t for t in (part.strip() for part in text.split(",")) if t)


def _list_url(filters: dict[str, Any], **changes: Any) -> str:
    values = {k: v for k, v in {**filters, **changes}.items() if v not in ("", None, 1)}
    return f"{PATH}?{urlencode(values)}" if values else PATH


@router.get("")
def list_page(
    request: Request, principal: Principal = MANAGE_KB, q: Annotated[str, Query(max_length=200)] = "",
    status: Annotated[str, Query(max_length=20)] = "", category: Annotated[str, Query(max_length=120)] = "",
    tag: Annotated[str, Query(max_length=64)] = "", page_number: Annotated[Page, Query(alias="page")] = 1,
) -> Response:  # fmt: skip
    db = instance(request).db
    found = articles.list_articles(db, principal.org_id, q or None, category or None, tag or None, status or None,
                                   page_number, PER_PAGE)  # fmt: skip
    filters = {"q": q, "status": status, "category": category, "tag": tag}
    pages = max(1, -(-found.total // PER_PAGE))
    context: dict[str, Any] = {"found": found, "filters": filters, "pages": pages,
                               "url": lambda **c: _list_url(filters, **c)}
    if is_htmx(request) and request.headers.get("hx-target") == LIST_ID:
        return page(request, "_knowledge_list.html", principal, **context)
    categories, tags = articles.facets(db, principal.org_id)
    return page(request, "knowledge_list.html", principal, page_name="knowledge", statuses=articles.STATUSES,
                categories=categories, tags=tags, **context)  # fmt: skip


@router.get("/new")
def new_page(request: Request, principal: Principal = MANAGE_KB,
             title: Annotated[str, Query(max_length=articles.MAX_TITLE)] = "") -> Response:  # fmt: skip
    draft = articles.Draft(title, "")
    return _editor(request, principal, None, draft)


@router.post("/new")
def create(request: Request, title: Title, content: Text = "", category: Short = "", tags: Short = "",
           principal: Principal = MANAGE_KB) -> Response:  # fmt: skip
    draft = articles.Draft(title, content, category, _tags(tags))
    try:
        article = articles.create_article(instance(request).db, principal.context(client_addr(request)),
                                          principal.org_id, draft)  # fmt: skip
    except (InvalidValue, Conflict) as exc:
        return _editor(request, principal, None, draft, error=exc.message, status=exc.status)
    knowledge_changed(request, principal.org_id)
    return see_other(article_url(article.id))


@router.post("/preview", response_class=HTMLResponse)
def preview(request: Request, content: Text = "",
            principal: Principal = requires_any(P.EDIT_ARTICLES, P.MANAGE_KNOWLEDGE_BASE)) -> Response:  # fmt: skip
    """The markdown as the help centre renders it: markdown-it, then the allowlist sanitiser."""
    return page(request, "_preview.html", principal, html=render_markdown(content))


def _usage(request: Request, principal: Principal, article_id: int) -> ArticleUsage | None:
    if not {P.VIEW_ARTICLE_ANALYTICS, P.VIEW_ANALYTICS} & principal.permissions:
        return None
    return article_usage(instance(request).db, principal.org_id, article_id)


def _editor(request: Request, principal: Principal, article: articles.Article | None, draft: articles.Draft, *,
            status: int = 200, error: str | None = None, **extra: Any) -> Response:  # fmt: skip
    """The editor page, for a new article (article None) or an existing one with its golden questions."""
    db = instance(request).db
    categories, tags = articles.facets(db, principal.org_id)
    questions = [g for g in golden.list_golden(db, principal.org_id)
                 if article is not None and g.expected_article_id == article.id]  # fmt: skip
    context: dict[str, Any] = {
        "article": article, "draft": draft, "error": error, "preview_html": render_markdown(draft.content),
        "categories": categories, "known_tags": tags, "questions": questions, "actions": _actions(article),
        "usage": _usage(request, principal, article.id) if article else None, "gate": None, "results": None,
        "may_override": P.CONFIGURE_AI in principal.permissions,
    }  # fmt: skip
    context |= extra
    context["titles"] = _titles(request, principal, (context["gate"] or {}).get("regressions", []) +
                                (context["results"] or []))  # fmt: skip
    return page(request, "knowledge_article.html", principal, status=status, page_name="knowledge", **context)


def _titles(request: Request, principal: Principal, results: list[dict[str, Any]]) -> dict[int, str]:
    """The titles of the articles golden results name (expected, and answered from), for people to read."""
    ids = {r[k] for r in results for k in ("expected_article_id", "got_article_id") if r.get(k) is not None}
    db, titles = instance(request).db, {}
    for article_id in ids:
        try:
            titles[article_id] = articles.get_article(db, principal.org_id, article_id).latest.title
        except NotFound:
            titles[article_id] = f"article #{article_id}"
    return titles


def _actions(article: articles.Article | None) -> list[tuple[str, str]]:
    """The status changes that mean something now: (status, button label)."""
    if article is None:
        return []
    wanted = []
    if article.status != "published" or article.has_unpublished_changes:
        wanted.append("published")
    wanted += [s for s in ("draft", "archived") if s != article.status]
    return [(s, ACTIONS[s]) for s in wanted]


def _draft_of(article: articles.Article) -> articles.Draft:
    v = article.latest
    return articles.Draft(v.title, v.content, v.category, tuple(v.tags))


@router.get("/{article_id}")
def article_page(article_id: Id, request: Request, principal: Principal = MANAGE_KB) -> Response:
    article = articles.get_article(instance(request).db, principal.org_id, article_id)
    return _editor(request, principal, article, _draft_of(article))


@router.post("/{article_id}")
def save(article_id: Id, request: Request, title: Title, expected_version: Annotated[Id, Form()],
         content: Text = "", category: Short = "", tags: Short = "",
         note: Annotated[str, Form(max_length=200)] = "", principal: Principal = MANAGE_KB) -> Response:  # fmt: skip
    """Save a new version; a save based on an older version than the latest is refused, the text kept on screen."""
    db = instance(request).db
    draft = articles.Draft(title, content, category, _tags(tags))
    try:
        articles.update_article(db, principal.context(client_addr(request)), principal.org_id, article_id, draft,
                                note.strip() or "edited", expected_version)  # fmt: skip
    except (InvalidValue, Conflict) as exc:
        article = articles.get_article(db, principal.org_id, article_id)
        return _editor(request, principal, article, draft, error=exc.message, status=exc.status)
    knowledge_changed(request, principal.org_id)
    return see_other(article_url(article_id))


@router.post("/{article_id}/status")
def set_status(article_id: Id, request: Request, status: Annotated[str, Form(max_length=20)],
               override: Annotated[bool, Form()] = False, principal: Principal = MANAGE_KB) -> Response:  # fmt: skip
    """Publish, archive or withdraw through the gate; a blocked change shows the golden questions it breaks."""
    inst = instance(request)
    ctx = principal.context(client_addr(request))
    try:
        golden.set_status(inst.db, ctx, inst.answers, inst.staged_answers, principal.org_id, article_id, status,
                          override, P.CONFIGURE_AI in principal.permissions)  # fmt: skip
    except PublishBlocked as exc:
        article = articles.get_article(inst.db, principal.org_id, article_id)
        return _editor(request, principal, article, _draft_of(article), status=exc.status, gate=exc.details,
                       blocked_status=status, blocked_label=ACTIONS.get(status, status), error=exc.message)  # fmt: skip
    knowledge_changed(request, principal.org_id)
    return see_other(article_url(article_id))


@router.post("/{article_id}/golden")
def add_golden(article_id: Id, request: Request, question: Annotated[str, Form(max_length=golden.MAX_QUESTION_CHARS)],
               principal: Principal = MANAGE_KB) -> Response:  # fmt: skip
    """A golden question this article must answer."""
    golden.add_golden(instance(request).db, principal.context(client_addr(request)), principal.org_id, question,
                      article_id)  # fmt: skip
    return see_other(article_url(article_id, "golden"))


@router.post("/{article_id}/golden/{golden_id}/delete")
def delete_golden(article_id: Id, golden_id: Id, request: Request, principal: Principal = MANAGE_KB) -> Response:
    golden.delete_golden(instance(request).db, principal.context(client_addr(request)), principal.org_id, golden_id)
    return see_other(article_url(article_id, "golden"))


@router.post("/{article_id}/golden/run")
def run_golden(article_id: Id, request: Request, principal: Principal = MANAGE_KB) -> Response:
    """This article's golden questions against the live knowledge base (nothing changes)."""
    inst = instance(request)
    article = articles.get_article(inst.db, principal.org_id, article_id)
    mine = [g for g in golden.list_golden(inst.db, principal.org_id) if g.expected_article_id == article_id]
    results = golden.evaluate(inst.answers, principal.org_id, mine)
    return _editor(request, principal, article, _draft_of(article), results=[r.public() for r in results])
