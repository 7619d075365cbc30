"""An article's version history (/console/knowledge/{id}/versions): every version, two of them side by side (the
domain's line diff), and restoring one, which saves it again as a new version (nothing is overwritten).
The same functions and permission as /api/knowledge/{id}/versions, /diff and /restore."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from appliance.auth import users
from appliance.auth.principal import Principal
from appliance.auth.roles import Permission
from appliance.console.render import ConsoleRoute, page, see_other
from appliance.knowledge import articles
from appliance.web.deps import client_addr, instance, knowledge_changed, requires
from appliance.web.params import Id

router = APIRouter(prefix="/console/knowledge/{article_id}/versions", route_class=ConsoleRoute,
                   include_in_schema=False)  # fmt: skip
MANAGE_KB = requires(Permission.MANAGE_KNOWLEDGE_BASE)


def versions_url(article_id: int) -> str:
    return f"/console/knowledge/{article_id}/versions"


@router.get("")
def versions_page(article_id: Id, request: Request, principal: Principal = MANAGE_KB,
                  old: Id | None = None,
                  new: Id | None = None) -> Response:  # fmt: skip
    """Without a choice, the latest version is compared with the one before it."""
    db = instance(request).db
    article = articles.get_article(db, principal.org_id, article_id)
    versions = articles.list_versions(db, principal.org_id, article_id)
    new = new or article.current_version
    old = old or max(1, new - 1)
    diff = articles.diff_versions(db, principal.org_id, article_id, old, new) if len(versions) > 1 else None
    people = {f"user:{m.id}": m.name or m.email for m in users.list_members(db, principal.org_id)}
    return page(request, "knowledge_versions.html", principal, page_name="knowledge", article=article,
                versions=versions, old=old, new=new, diff=diff, people=people)  # fmt: skip


@router.post("/{version}/restore")
def restore(article_id: Id, version: Id, request: Request, principal: Principal = MANAGE_KB) -> Response:
    articles.restore_version(instance(request).db, principal.context(client_addr(request)), principal.org_id,
                             article_id, version)  # fmt: skip
    knowledge_changed(request, principal.org_id)
    return see_other(versions_url(article_id))
