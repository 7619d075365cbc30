"""Asking the assistant (POST /api/chat/message), the provenance of its answers and the knowledge gaps it found."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from appliance.answering import golden
from appliance.auth.principal import Principal
from appliance.auth.roles import Permission
from appliance.conversations import chat
from appliance.web.deps import Caller, client_addr, instance, requires, visitor_or
from appliance.web.params import Id
from appliance.web.routes.conversations import publish

router = APIRouter(tags=["answers"])


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = Field(min_length=1, description="At most max_message_bytes bytes of UTF-8 (413 above)")
    conversation_id: Id | None = None
    client_id: str | None = Field(default=None, min_length=1, max_length=100,
                                  description="The sender's id for this message: a resend with it is not stored twice")


@router.post("/api/chat/message", summary="Send a message; receive the assistant's answer with its sources")
def chat_message(body: ChatMessage, request: Request, response: Response,
                 caller: Caller = visitor_or(Permission.RESPOND_TO_CUSTOMERS)) -> dict[str, Any]:  # fmt: skip
    """For a widget visitor (X-Visitor-Session), or an integration acting for customers (an API key or a person
    with respond_to_customers). A person's conversation in progress gets no AI answer (answer: null)."""
    inst = instance(request)
    v = caller.visitor
    received, responded = inst.flow.ask(
        caller.context(client_addr(request)), caller.org_id, body.message, sender=caller.sender,
        conversation_id=body.conversation_id, client_id=body.client_id, channel="widget" if v else "api",
        customer_id=v.customer_id if v else None, visitor_id=v.visitor_id if v else None,
    )  # fmt: skip
    publish(request, received.events + responded.events)
    if received.duplicate:
        response.status_code = 200
    return {
        "conversation_id": received.conversation_id,
        "customer_message_id": received.message_id,
        "duplicate": received.duplicate,
        "message_id": responded.message_id if responded.message_id is not None else received.reply_id,
        "status": responded.status,
        "escalated": responded.escalated,
        "answer": responded.answer.public() if responded.answer is not None else None,
    }


@router.get("/api/messages/{message_id}/provenance", summary="What produced an AI message")
def message_provenance(
    message_id: Id, request: Request, principal: Principal = requires(Permission.REVIEW_AI_RESPONSES)
) -> dict[str, Any]:
    ctx = principal.context(client_addr(request))
    return chat.provenance(instance(request).db, ctx, principal.org_id, message_id)


@router.get("/api/knowledge/gaps", summary="Questions the assistant refused for lack of knowledge, newest first")
def knowledge_gaps(
    request: Request,
    principal: Principal = requires(Permission.MANAGE_KNOWLEDGE_BASE),
    limit: int = Query(default=100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    return chat.knowledge_gaps(instance(request).db, principal.org_id, limit)


class GoldenBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=golden.MAX_QUESTION_CHARS)
    expected_article_id: Id | None = Field(default=None, description="The article that must answer it; null: must refuse")


def _golden_out(g: golden.Golden) -> dict[str, Any]:
    return {"id": g.id, "question": g.question, "expected_article_id": g.expected_article_id,
            "created_by": g.created_by, "created_at": g.created_at}  # fmt: skip


@router.get("/api/knowledge/golden", summary="The organisation's golden questions")
def list_golden(request: Request, principal: Principal = requires(Permission.MANAGE_KNOWLEDGE_BASE)) -> list[dict[str, Any]]:
    return [_golden_out(g) for g in golden.list_golden(instance(request).db, principal.org_id)]


@router.post("/api/knowledge/golden", status_code=201, summary="Add a golden question")
def add_golden(
    body: GoldenBody, request: Request, principal: Principal = requires(Permission.MANAGE_KNOWLEDGE_BASE)
) -> dict[str, Any]:
    ctx = principal.context(client_addr(request))
    added = golden.add_golden(instance(request).db, ctx, principal.org_id, body.question, body.expected_article_id)
    return _golden_out(added)


@router.delete("/api/knowledge/golden/{golden_id}", status_code=204, summary="Remove a golden question")
def delete_golden(
    golden_id: Id, request: Request, principal: Principal = requires(Permission.MANAGE_KNOWLEDGE_BASE)
) -> None:
    golden.delete_golden(instance(request).db, principal.context(client_addr(request)), principal.org_id, golden_id)


@router.get("/api/knowledge/golden/run", summary="Run the golden questions against the live knowledge base")
def run_golden(request: Request, principal: Principal = requires(Permission.MANAGE_KNOWLEDGE_BASE)) -> dict[str, Any]:
    inst = instance(request)
    results = golden.evaluate(inst.answers, principal.org_id, golden.list_golden(inst.db, principal.org_id))
    return {"passed": all(r.passed for r in results), "results": [r.public() for r in results]}
