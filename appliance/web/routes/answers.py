"""Asking the assistant (POST /api/chat/message), the provenance of its answers and the knowledge gaps it found."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from appliance.answering import golden
from appliance.answering.engine import MAX_QUESTION_CHARS
from appliance.auth.principal import Principal
from appliance.auth.roles import Permission
from appliance.conversations import chat
from appliance.web.deps import client_addr, instance, requires

router = APIRouter(tags=["answers"])


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    conversation_id: int | None = Field(default=None, ge=1)


@router.post("/api/chat/message", summary="Send a message; receive the assistant's answer with its sources")
def chat_message(
    body: ChatMessage, request: Request, principal: Principal = requires(Permission.RESPOND_TO_CUSTOMERS)
) -> dict[str, Any]:
    inst = instance(request)
    ctx = principal.context(client_addr(request))
    reply = chat.ask(inst.db, inst.answers, ctx, principal.org_id, body.message, body.conversation_id)
    return {
        "conversation_id": reply.conversation_id,
        "message_id": reply.message_id,
        "status": reply.status,
        "escalated": reply.escalated,
        "answer": reply.answer.public() if reply.answer is not None else None,
    }


@router.get("/api/messages/{message_id}/provenance", summary="What produced an AI message")
def message_provenance(
    message_id: int, request: Request, principal: Principal = requires(Permission.REVIEW_AI_RESPONSES)
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
    expected_article_id: int | None = Field(default=None, description="The article that must answer it; null: must refuse")


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
    golden_id: int, request: Request, principal: Principal = requires(Permission.MANAGE_KNOWLEDGE_BASE)
) -> None:
    golden.delete_golden(instance(request).db, principal.context(client_addr(request)), principal.org_id, golden_id)


@router.get("/api/knowledge/golden/run", summary="Run the golden questions against the live knowledge base")
def run_golden(request: Request, principal: Principal = requires(Permission.MANAGE_KNOWLEDGE_BASE)) -> dict[str, Any]:
    inst = instance(request)
    results = golden.evaluate(inst.answers, principal.org_id, golden.list_golden(inst.db, principal.org_id))
    return {"passed": all(r.passed for r in results), "results": [r.public() for r in results]}
