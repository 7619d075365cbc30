"""The inbox page (/console/inbox): the queues a person works from, filters, and the conversation list, which htmx
swaps in place when a filter changes and console.js refreshes when the hub says something changed. Also the
agent's availability (only online agents are routed conversations and alerted)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, Response

from appliance.auth.orgs import get_org
from appliance.auth.principal import Principal
from appliance.auth.roles import Permission
from appliance.conversations import inbox, routing
from appliance.conversations.flow import PRIORITIES
from appliance.conversations.views import SENTIMENTS, STATUSES
from appliance.console.render import VIEW_CONVERSATIONS, ConsoleRoute, is_htmx, page, see_other
from appliance.web.deps import instance, requires, requires_any
from appliance.web.routes.conversations import viewer
from appliance.web.routes.routing import set_availability

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
P = Permission
PATH = "/console/inbox"
LIST_ID = "conversation-list"  # htmx names the element it swaps in the HX-Target header


def inbox_url(filters: inbox.Filters, **changes: str) -> str:
    """The inbox with these filters (defaults left out of the query)."""
    values, defaults = {**asdict(filters), **changes}, asdict(inbox.Filters())
    query = urlencode({k: v for k, v in values.items() if v != defaults[k]})
    return f"{PATH}?{query}" if query else PATH


def _list_context(request: Request, principal: Principal, filters: inbox.Filters) -> dict[str, Any]:
    db, me = instance(request).db, viewer(principal)
    return {"rows": inbox.list_inbox(db, principal.org_id, me, filters), "filters": filters,
            "queues": inbox.queues(db, principal.org_id, me), "url": lambda **c: inbox_url(filters, **c)}  # fmt: skip


def _availability(request: Request, principal: Principal) -> str | None:
    if P.RESPOND_TO_CUSTOMERS not in principal.permissions:
        return None
    with instance(request).db.read() as conn:
        return routing.agent(conn, principal.org_id, principal.id).availability


@router.get("/inbox")
def inbox_page(
    request: Request, principal: Principal = requires_any(*VIEW_CONVERSATIONS),
    queue: Annotated[str, Query(max_length=40)] = "all", status: Annotated[str, Query(max_length=20)] = "open",
    sentiment: Annotated[str, Query(max_length=20)] = "", topic: Annotated[str, Query(max_length=200)] = "",
    priority: Annotated[str, Query(max_length=20)] = "",
) -> Response:  # fmt: skip
    filters = inbox.Filters(queue, status, sentiment, topic, priority).checked()
    context = _list_context(request, principal, filters)
    if is_htmx(request) and request.headers.get("hx-target") == LIST_ID:
        return page(request, "_inbox_list.html", principal, oob=True, **context)
    db = instance(request).db
    return page(request, "inbox.html", principal, live=True, page_name="inbox", oob=False,
                org_name=get_org(db, principal.org_id).name, availability=_availability(request, principal),
                topics=inbox.topics(db, principal.org_id), statuses=STATUSES, sentiments=SENTIMENTS,
                priorities=PRIORITIES, **context)  # fmt: skip


@router.post("/availability")
def availability(request: Request, availability: Annotated[Literal["online", "away", "offline"], Form()],
                 principal: Principal = requires(P.RESPOND_TO_CUSTOMERS)) -> Response:  # fmt: skip
    set_availability(request, principal, availability, None)
    return see_other(PATH)
