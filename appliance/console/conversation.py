"""The conversation page (/console/conversations/{id}): the transcript with each AI answer's confidence and
sources, the handoff package, the internal notes, and the actions: take over, hand back, reply, resolve, assign,
add a note. Actions are plain form posts that call the same functions as the API's routes (which check, change,
audit and publish over the hub) and come back to the page; console.js appends what others change as it happens."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response

from appliance.auth.orgs import get_org
from appliance.auth.principal import Principal
from appliance.auth.roles import Permission
from appliance.conversations import inbox, notes, routing, views
from appliance.conversations.flow import CLOSED_STATUSES
from appliance.console.render import VIEW_CONVERSATIONS, ConsoleRoute, page, see_other, uncited
from appliance.errors import NotFound
from appliance.web.deps import Caller, client_addr, instance, requires, requires_any
from appliance.web.params import Id, parse_id
from appliance.web.routes.conversations import (
    assign_to, check_visible, hand_back, handoff_package, publish, reply_as, resolve_for, take_over, viewer,
)  # fmt: skip

router = APIRouter(prefix="/console/conversations/{conversation_id}", route_class=ConsoleRoute,
                   include_in_schema=False)
P = Permission


def page_url(conversation_id: int, anchor: str = "") -> str:
    return f"/console/conversations/{conversation_id}" + (f"#{anchor}" if anchor else "")


def _allowed(principal: Principal, conversation: dict[str, Any]) -> dict[str, bool]:
    """Which actions to offer (the functions behind them check again)."""
    held, is_open = principal.permissions, conversation["status"] not in CLOSED_STATUSES
    mine = conversation["handled_by"] == "agent" and conversation["assigned_agent_id"] == principal.id
    return {
        "take_over": P.RESPOND_TO_CUSTOMERS in held and is_open and conversation["handled_by"] == "ai",
        "hand_back": P.RESPOND_TO_CUSTOMERS in held and is_open and conversation["handled_by"] == "agent"
        and (mine or P.VIEW_ALL_CONVERSATIONS in held),
        "reply": P.RESPOND_TO_CUSTOMERS in held and is_open and mine,
        "resolve": P.MARK_RESOLVED in held and is_open,
        "assign": P.ASSIGN_CONVERSATIONS in held and is_open,
    }  # fmt: skip


def _state(request: Request, principal: Principal, conversation: dict[str, Any]) -> dict[str, Any]:
    allowed = _allowed(principal, conversation)
    agents = routing.list_agents(instance(request).db, principal.org_id) if allowed["assign"] else []
    return {"conversation": conversation, "can": allowed, "agents": agents}


def _prefill(package: dict[str, Any], use: str) -> str:
    """The reply box's first text: a canned reply when one was picked, else the drafted suggestion."""
    if use.startswith("canned-"):
        chosen = [c for c in package["handoff"]["canned_replies"] if f"canned-{c['id']}" == use]
        if chosen:
            return str(chosen[0]["body"])
    if use == "blank":
        return ""
    return uncited(package["handoff"]["suggestion"]["draft"])


def _back_to(request: Request, principal: Principal, conversation_id: int, anchor: str = "") -> Response:
    """After an action: the conversation again, or the inbox when this person may no longer see it."""
    try:
        check_visible(request, principal, conversation_id)
    except NotFound:
        return see_other("/console/inbox")
    return see_other(page_url(conversation_id, anchor))


@router.get("")
def conversation_page(conversation_id: Id, request: Request, principal: Principal = requires_any(*VIEW_CONVERSATIONS),
                      use: Annotated[str, Query(max_length=40)] = "") -> Response:  # fmt: skip
    package = handoff_package(request, principal, conversation_id)
    db = instance(request).db
    inbox.mark_read(db, principal.id, conversation_id)
    return page(request, "conversation.html", principal, live=True, page_name="conversation",
                conversation_id=conversation_id, org_name=get_org(db, principal.org_id).name, package=package,
                prefill=_prefill(package, use), client_id=secrets.token_urlsafe(16),
                **_state(request, principal, package["conversation"]))  # fmt: skip


@router.get("/state")
def state_fragment(conversation_id: Id, request: Request,
                   principal: Principal = requires_any(*VIEW_CONVERSATIONS)) -> Response:  # fmt: skip
    """The status line and the actions, which console.js refreshes when the conversation changes."""
    conversation = views.conversation(instance(request).db, principal.org_id, conversation_id, viewer(principal))
    return page(request, "_conversation_state.html", principal, **_state(request, principal, conversation))


@router.post("/takeover")
def takeover(conversation_id: Id, request: Request,
             principal: Principal = requires(P.RESPOND_TO_CUSTOMERS)) -> Response:  # fmt: skip
    take_over(request, principal, conversation_id)
    return _back_to(request, principal, conversation_id, "reply")


@router.post("/release")
def release(conversation_id: Id, request: Request,
            principal: Principal = requires(P.RESPOND_TO_CUSTOMERS)) -> Response:  # fmt: skip
    hand_back(request, principal, conversation_id)
    return _back_to(request, principal, conversation_id)


@router.post("/reply")
def reply(conversation_id: Id, request: Request, text: Annotated[str, Form(max_length=20_000)],
          client_id: Annotated[str, Form(min_length=1, max_length=100)],
          principal: Principal = requires(P.RESPOND_TO_CUSTOMERS)) -> Response:  # fmt: skip
    reply_as(request, principal, conversation_id, text, client_id)  # a resubmitted form has the same client id
    return _back_to(request, principal, conversation_id, "reply")


@router.post("/resolve")
def resolve(conversation_id: Id, request: Request, principal: Principal = requires(P.MARK_RESOLVED)) -> Response:
    resolve_for(request, Caller(None, principal), conversation_id, close=False)
    return _back_to(request, principal, conversation_id)


@router.post("/assign")
def assign(conversation_id: Id, request: Request, agent_id: Annotated[str, Form(max_length=20)],
           principal: Principal = requires(P.ASSIGN_CONVERSATIONS)) -> Response:  # fmt: skip
    """agent_id: a user id, or empty to return the conversation to its queue."""
    assign_to(request, principal, conversation_id, parse_id(agent_id, "agent_id"))
    return _back_to(request, principal, conversation_id)


@router.post("/notes")
def add_note(conversation_id: Id, request: Request, body: Annotated[str, Form(max_length=20_000)],
             principal: Principal = requires_any(*VIEW_CONVERSATIONS)) -> Response:  # fmt: skip
    check_visible(request, principal, conversation_id)
    _, events = notes.add_note(instance(request).db, principal.context(client_addr(request)), principal.org_id,
                               conversation_id, principal.id, body)  # fmt: skip
    publish(request, events)
    return see_other(page_url(conversation_id, "notes"))


@router.post("/read")
def mark_read(conversation_id: Id, request: Request, message_id: Annotated[Id, Form()],
              principal: Principal = requires_any(*VIEW_CONVERSATIONS)) -> Response:  # fmt: skip
    """console.js reports the messages seen while the page is open (the inbox's unread counts)."""
    check_visible(request, principal, conversation_id)
    inbox.mark_read(instance(request).db, principal.id, conversation_id, message_id)
    return Response(status_code=204)
