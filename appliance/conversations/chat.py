"""Asking the assistant from the API and the CLI (through the conversation flow), and what its answers are made
of: provenance, replay, and the knowledge gaps its refusals recorded."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from appliance import audit
from appliance.answering.engine import AnswerEngine
from appliance.answering.replay import Replay, replay
from appliance.answering.types import Answer
from appliance.audit.events import Context, ProvenanceRead
from appliance.conversations.flow import Flow
from appliance.errors import Conflict, NotFound
from appliance.store import Connection, Database


@dataclass(frozen=True)
class Reply:
    conversation_id: int
    customer_message_id: int
    message_id: int | None  # None when the conversation is with a person and the assistant stays silent
    answer: Answer | None
    status: str
    escalated: bool


def ask(
    db: Database, engine: AnswerEngine, ctx: Context, org_id: int, text: str, conversation_id: int | None = None,
    channel: str = "api", on_delta: Callable[[str], None] | None = None, flow: Flow | None = None,
) -> Reply:  # fmt: skip
    """One customer message and the assistant's reply, as the API and the CLI send them (no client id)."""
    flow = flow or Flow(db, lambda: engine)
    received, responded = flow.ask(ctx, org_id, text, sender=ctx.actor, conversation_id=conversation_id,
                                   channel=channel, on_delta=on_delta)  # fmt: skip
    return Reply(received.conversation_id, received.message_id, responded.message_id, responded.answer,
                 responded.status, responded.escalated)  # fmt: skip


def _ai_message(conn: Connection, org_id: int, message_id: int) -> Any:
    row = conn.execute(
        "SELECT * FROM messages WHERE id = ? AND org_id = ? AND role = 'ai'", (message_id, org_id)
    ).fetchone()
    if row is None or row["provenance"] is None:
        raise NotFound(f"AI message {message_id} not found")
    return row


def provenance(db: Database, ctx: Context, org_id: int, message_id: int) -> dict[str, Any]:
    """What produced an AI message; reading it is audited (it shows which knowledge a customer was given)."""
    with db.write() as conn:
        row = _ai_message(conn, org_id, message_id)
        audit.record(conn, ctx, ProvenanceRead(message_id))
    return {
        "message_id": message_id, "conversation_id": int(row["conversation_id"]), "outcome": row["outcome"],
        "confidence": row["confidence"], "mode": row["mode"], "created_at": row["created_at"],
        "sources": json.loads(row["sources"]), **json.loads(row["provenance"]),
    }  # fmt: skip


def replay_message(db: Database, engine: AnswerEngine, org_id: int, message_id: int) -> Replay:
    with db.read() as conn:
        row = _ai_message(conn, org_id, message_id)
    if row["outcome"] != "answered":
        raise Conflict(f"message {message_id} is a {row['outcome']} reply; there is no answer to replay")
    return replay(db, engine.parts.calibration, org_id, message_id, json.loads(row["provenance"]), row["content"],
                  int(row["confidence"]))  # fmt: skip


def knowledge_gaps(db: Database, org_id: int, limit: int = 100) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(
            "SELECT g.*, v.title AS best_title FROM knowledge_gaps g LEFT JOIN article_versions v"
            " ON v.article_id = g.best_article_id AND v.version = g.best_version AND v.org_id = g.org_id"
            " WHERE g.org_id = ? ORDER BY g.id DESC LIMIT ?", (org_id, limit),
        ).fetchall()  # fmt: skip
    return [
        {"id": r["id"], "message_id": r["message_id"], "question": r["question"], "query": r["query"],
         "reason": r["reason"], "best_article_id": r["best_article_id"], "best_title": r["best_title"],
         "best_score": r["best_score"], "confidence": r["confidence"], "created_at": r["created_at"]}
        for r in rows
    ]  # fmt: skip
