"""Conversations for the people who handle them: the list, the handoff package, escalate, take over, reply,
hand back, assign, resolve; and the customers' history. Every change is pushed over the hub once committed.

The actions (`take_over`, `hand_back`, `reply_as`, `assign_to`, `resolve_for`, `handoff_package`) are plain
functions that the web console's pages call too, so both entry points check, change and publish the same way."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from appliance.auth.principal import Principal
from appliance.auth.roles import Permission
from appliance.conversations import canned, customers, events, views
from appliance.conversations.events import Event
from appliance.errors import Conflict, InvalidValue, NotFound
from appliance.web.deps import Caller, client_addr, instance, requires, requires_any, visitor_or
from appliance.web.params import Id

router = APIRouter(tags=["conversations"])

P = Permission
VIEW = (P.VIEW_ALL_CONVERSATIONS, P.VIEW_ASSIGNED_CONVERSATIONS)


def publish(request: Request, events: list[Event]) -> None:
    """Push committed changes to the hub, and send the webhook deliveries they queued."""
    request.app.state.hub.publish_threadsafe(events)
    if instance(request).flow.take_deliveries():
        request.app.state.tasks.deliver_webhooks()


def viewer(principal: Principal) -> views.Viewer:
    return views.Viewer(principal.id if principal.kind == "user" else -1,
                        P.VIEW_ALL_CONVERSATIONS in principal.permissions)  # fmt: skip


def person(principal: Principal) -> int:
    if principal.kind != "user":
        raise InvalidValue("only a signed-in person can do this, not an API key")
    return principal.id


def check_visible(request: Request, principal: Principal, conversation_id: int) -> Any:
    """The conversation's row; NotFound when this person may not see it."""
    with instance(request).db.read() as conn:
        return views.visible(conn, principal.org_id, conversation_id, viewer(principal))


def handoff_package(request: Request, principal: Principal, conversation_id: int) -> dict[str, Any]:
    inst = instance(request)
    return views.handoff(inst.db, principal.context(client_addr(request)), principal.org_id, conversation_id,
                         viewer(principal), lambda: inst.answers, canned.list_replies(inst.db, principal.org_id),
                         inst.summaries, inst.summary_writer())  # fmt: skip


def take_over(request: Request, principal: Principal, conversation_id: int) -> None:
    try:
        check_visible(request, principal, conversation_id)
    except NotFound:
        with instance(request).db.read() as conn:  # lost a race for it: say so, rather than "not found"
            row = conn.execute("SELECT handled_by FROM conversations WHERE id = ? AND org_id = ?",
                               (conversation_id, principal.org_id)).fetchone()  # fmt: skip
        if row is not None and row["handled_by"] == "agent":
            raise Conflict(f"conversation {conversation_id} is already taken by another agent") from None
        raise
    events = instance(request).flow.takeover(principal.context(client_addr(request)), principal.org_id,
                                             conversation_id, person(principal))  # fmt: skip
    publish(request, events)


def hand_back(request: Request, principal: Principal, conversation_id: int) -> None:
    check_visible(request, principal, conversation_id)
    events = instance(request).flow.release(principal.context(client_addr(request)), principal.org_id,
                                            conversation_id, person(principal),
                                            P.VIEW_ALL_CONVERSATIONS in principal.permissions)  # fmt: skip
    publish(request, events)


def reply_as(request: Request, principal: Principal, conversation_id: int, text: str,
             client_id: str | None) -> tuple[int, bool]:  # fmt: skip
    """The person's reply to the customer: (message id, whether it was a resend of a stored one)."""
    check_visible(request, principal, conversation_id)
    message_id, duplicate, events = instance(request).flow.agent_reply(
        principal.context(client_addr(request)), principal.org_id, conversation_id, person(principal), text,
        client_id,
    )  # fmt: skip
    publish(request, events)
    return message_id, duplicate


def assign_to(request: Request, principal: Principal, conversation_id: int, agent_id: int | None) -> None:
    events = instance(request).flow.assign(principal.context(client_addr(request)), principal.org_id,
                                           conversation_id, agent_id)  # fmt: skip
    publish(request, events)


def resolve_for(request: Request, caller: Caller, conversation_id: int, close: bool) -> None:
    if caller.principal is not None:
        check_visible(request, caller.principal, conversation_id)
    events = instance(request).flow.resolve(
        caller.context(client_addr(request)), caller.org_id, conversation_id,
        caller.visitor.visitor_id if caller.visitor else None, close=close,
    )  # fmt: skip
    publish(request, events)


@router.get("/api/conversations", summary="Conversations this person may see, newest first (page with before=<last id>)")
def list_conversations(
    request: Request, principal: Principal = requires_any(*VIEW),
    status: str | None = None, agent: Id | None = None, sentiment: str | None = None,
    topic: str | None = None, priority: str | None = None, team: Id | None = None,
    limit: int = Query(default=100, ge=1, le=500), before: Id | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    return views.list_conversations(instance(request).db, principal.org_id, viewer(principal), status=status,
                                    agent_id=agent, sentiment=sentiment, topic=topic, priority=priority,
                                    team_id=team, limit=limit, before=before)  # fmt: skip


@router.get("/api/conversations/{conversation_id}", summary="A conversation with its handoff package")
def get_conversation(conversation_id: Id, request: Request,
                     principal: Principal = requires_any(*VIEW)) -> dict[str, Any]:  # fmt: skip
    return handoff_package(request, principal, conversation_id)


class EscalateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="escalated by staff", min_length=1, max_length=500)
    team_id: Id | None = None


@router.post("/api/conversations/{conversation_id}/escalate", summary="Hand a conversation to a person")
def escalate(conversation_id: Id, body: EscalateBody, request: Request,
             principal: Principal = requires_any(P.RESPOND_TO_CUSTOMERS, P.ASSIGN_CONVERSATIONS)) -> dict[str, Any]:  # fmt: skip
    check_visible(request, principal, conversation_id)
    inst = instance(request)
    events = inst.flow.escalate(principal.context(client_addr(request)), principal.org_id, conversation_id,
                                body.reason, trigger="staff", team_id=body.team_id)  # fmt: skip
    publish(request, events)
    return conversation_state(request, principal.org_id, conversation_id)


def conversation_state(request: Request, org_id: int, conversation_id: int) -> dict[str, Any]:
    with instance(request).db.read() as conn:
        row = conn.execute("SELECT * FROM conversations WHERE id = ? AND org_id = ?", (conversation_id, org_id)).fetchone()
    return events.conversation_summary(row)


@router.post("/api/conversations/{conversation_id}/takeover", summary="Take the conversation over from the assistant")
def takeover(conversation_id: Id, request: Request,
             principal: Principal = requires(P.RESPOND_TO_CUSTOMERS)) -> dict[str, Any]:  # fmt: skip
    take_over(request, principal, conversation_id)
    return conversation_state(request, principal.org_id, conversation_id)


@router.post("/api/conversations/{conversation_id}/release", summary="Hand the conversation back to the assistant")
def release(conversation_id: Id, request: Request,
            principal: Principal = requires(P.RESPOND_TO_CUSTOMERS)) -> dict[str, Any]:  # fmt: skip
    hand_back(request, principal, conversation_id)
    return conversation_state(request, principal.org_id, conversation_id)


class ReplyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1)
    client_id: str | None = Field(default=None, min_length=1, max_length=100)


@router.post("/api/conversations/{conversation_id}/messages", status_code=201, summary="Reply to the customer")
def reply(conversation_id: Id, body: ReplyBody, request: Request, response: Response,
          principal: Principal = requires(P.RESPOND_TO_CUSTOMERS)) -> dict[str, Any]:  # fmt: skip
    message_id, duplicate = reply_as(request, principal, conversation_id, body.text, body.client_id)
    if duplicate:
        response.status_code = 200
    return {"message_id": message_id, "duplicate": duplicate}


class AssignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent_id: Id | None = Field(description="The agent; null returns the conversation to its queue")


@router.post("/api/conversations/{conversation_id}/assign", summary="Assign a conversation to an agent")
def assign(conversation_id: Id, body: AssignBody, request: Request,
           principal: Principal = requires(P.ASSIGN_CONVERSATIONS)) -> dict[str, Any]:  # fmt: skip
    assign_to(request, principal, conversation_id, body.agent_id)
    return conversation_state(request, principal.org_id, conversation_id)


class PriorityBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    priority: Literal["low", "medium", "high", "urgent"]


@router.put("/api/conversations/{conversation_id}/priority", summary="Set a conversation's priority")
def set_priority(conversation_id: Id, body: PriorityBody, request: Request,
                 principal: Principal = requires(P.ASSIGN_CONVERSATIONS)) -> dict[str, Any]:  # fmt: skip
    instance(request).flow.set_priority(principal.context(client_addr(request)), principal.org_id, conversation_id,
                                        body.priority)  # fmt: skip
    return conversation_state(request, principal.org_id, conversation_id)


class ResolveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    close: bool = Field(default=False, description="Close for good (no CSAT prompt follows a closed conversation)")


@router.post("/api/conversations/{conversation_id}/resolve", summary="Mark a conversation resolved")
def resolve(conversation_id: Id, request: Request, body: ResolveBody | None = None,
            caller: Caller = visitor_or(P.MARK_RESOLVED)) -> dict[str, Any]:  # fmt: skip
    resolve_for(request, caller, conversation_id, close=bool(body and body.close))
    return conversation_state(request, caller.org_id, conversation_id)


class CsatBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rating: int = Field(ge=1, le=5)
    comment: str = Field(default="", max_length=2000)


@router.post("/api/conversations/{conversation_id}/csat", summary="The customer rates a resolved conversation")
def csat(conversation_id: Id, body: CsatBody, request: Request,
         caller: Caller = visitor_or(P.RESPOND_TO_CUSTOMERS)) -> dict[str, Any]:  # fmt: skip
    events = instance(request).flow.csat(
        caller.context(client_addr(request)), caller.org_id, conversation_id,
        caller.visitor.visitor_id if caller.visitor else None, body.rating, body.comment,
    )  # fmt: skip
    publish(request, events)
    return {"conversation_id": conversation_id, "rating": body.rating}


@router.get("/api/customers/{customer_id}/history", summary="A customer's profile and conversations")
def customer_history(customer_id: Id, request: Request,
                     principal: Principal = requires(P.VIEW_CUSTOMER_HISTORY)) -> dict[str, Any]:  # fmt: skip
    return customers.history(instance(request).db, principal.context(client_addr(request)), principal.org_id,
                             customer_id)  # fmt: skip


class ValueBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lifetime_value: float = Field(ge=0)


@router.put("/api/customers/{customer_id}/value", summary="Set a customer's lifetime value (for routing rules)")
def customer_value(customer_id: Id, body: ValueBody, request: Request,
                   principal: Principal = requires(P.MANAGE_AGENTS)) -> dict[str, Any]:  # fmt: skip
    return customers.set_lifetime_value(instance(request).db, principal.org_id, customer_id,
                                        body.lifetime_value).public()  # fmt: skip
