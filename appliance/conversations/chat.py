"""A customer message in, the assistant's reply out, both stored with what produced the reply.

The answer is computed outside any write transaction (search and composition take milliseconds to seconds); the
customer message, the AI message with its provenance, a refusal's escalation and knowledge gap, and the audit
event are then written in one transaction, so either all of them are stored or none. A conversation that has been
escalated gets no more AI answers: the customer's messages wait for a person.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from appliance import audit
from appliance.answering.engine import AnswerEngine
from appliance.answering.replay import Replay, replay
from appliance.answering.types import Answer
from appliance.audit.events import AnswerGiven, Context, ConversationEscalated, ProvenanceRead
from appliance.errors import Conflict, NotFound
from appliance.store import Connection, Database, now_iso

AI_STATUSES = ("active", "waiting")  # statuses in which the assistant answers
GAP_REASONS = ("low_confidence", "no_match")  # refusals that are knowledge gaps (not blocked attacks)


@dataclass(frozen=True)
class Reply:
    conversation_id: int
    customer_message_id: int
    message_id: int | None  # None when the conversation is with a person and the assistant stays silent
    answer: Answer | None
    status: str
    escalated: bool


def _insert(conn: Connection, sql: str, params: tuple[Any, ...]) -> int:
    row_id = conn.execute(sql, params).lastrowid
    assert row_id is not None
    return int(row_id)


def _conversation(conn: Connection, org_id: int, conversation_id: int) -> Any:
    row = conn.execute("SELECT * FROM conversations WHERE id = ? AND org_id = ?", (conversation_id, org_id)).fetchone()
    if row is None:
        raise NotFound(f"conversation {conversation_id} not found")
    return row


def previous_queries(db: Database, org_id: int, conversation_id: int) -> list[str]:
    with db.read() as conn:
        _conversation(conn, org_id, conversation_id)
        rows = conn.execute(
            "SELECT query FROM messages WHERE conversation_id = ? AND role = 'customer' AND query IS NOT NULL"
            " ORDER BY id", (conversation_id,),
        ).fetchall()  # fmt: skip
    return [str(r[0]) for r in rows]


def ask(
    db: Database, engine: AnswerEngine, ctx: Context, org_id: int, text: str, conversation_id: int | None = None,
    channel: str = "api", on_delta: Callable[[str], None] | None = None,
) -> Reply:  # fmt: skip
    status = "active"
    if conversation_id is not None:
        with db.read() as conn:
            status = str(_conversation(conn, org_id, conversation_id)["status"])
        if status in ("resolved", "closed"):
            raise Conflict(f"conversation {conversation_id} is {status}")
    answer: Answer | None = None
    if status in AI_STATUSES:
        previous = previous_queries(db, org_id, conversation_id) if conversation_id is not None else []
        answer = engine.answer(org_id, text, previous, on_delta=on_delta)
    now = now_iso()
    with db.write() as conn:
        if conversation_id is None:
            conversation_id = _insert(
                conn, "INSERT INTO conversations (org_id, channel, status, started_by, created_at, updated_at)"
                " VALUES (?, ?, 'active', ?, ?, ?)", (org_id, channel, ctx.actor, now, now),
            )  # fmt: skip
        else:
            status = str(_conversation(conn, org_id, conversation_id)["status"])  # may have changed meanwhile
            if status not in AI_STATUSES:
                answer = None
        customer_id = _insert(
            conn, "INSERT INTO messages (conversation_id, org_id, role, content, query, created_at)"
            " VALUES (?, ?, 'customer', ?, ?, ?)",
            (conversation_id, org_id, text, answer.query if answer is not None else None, now),
        )  # fmt: skip
        if answer is None:
            conn.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id))
            return Reply(conversation_id, customer_id, None, None, status, False)
        message_id = _insert(
            conn, "INSERT INTO messages (conversation_id, org_id, role, content, query, outcome, confidence, mode,"
            " sources, provenance, created_at) VALUES (?, ?, 'ai', ?, ?, ?, ?, ?, ?, ?, ?)",
            (conversation_id, org_id, answer.text, answer.query, answer.outcome, answer.confidence, answer.mode,
             json.dumps([s.public() for s in answer.sources]), json.dumps(answer.provenance), now),
        )  # fmt: skip
        articles = sorted({s.article_id for s in answer.sources})
        audit.record(conn, ctx, AnswerGiven(conversation_id, message_id, answer.outcome, answer.confidence,
                                            answer.reason, articles))  # fmt: skip
        escalated = answer.outcome == "refused"  # a blocked attack is refused and audited, not handed to a person
        if escalated:
            status = "escalated"
            conn.execute(
                "UPDATE conversations SET status = 'escalated', escalation_reason = ?, escalated_at = ?, updated_at = ?"
                " WHERE id = ?", (answer.reason, now, now, conversation_id),
            )  # fmt: skip
            audit.record(conn, ctx, ConversationEscalated(conversation_id, answer.reason))
            if answer.reason in GAP_REASONS:
                best = answer.provenance.get("best") or {}
                conn.execute(
                    "INSERT INTO knowledge_gaps (org_id, message_id, question, query, reason, best_article_id,"
                    " best_version, best_score, confidence, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (org_id, message_id, answer.question, answer.query, answer.reason, best.get("article_id"),
                     best.get("version"), best.get("score"), answer.confidence, now),
                )  # fmt: skip
        else:
            conn.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id))
    return Reply(conversation_id, customer_id, message_id, answer, status, escalated)


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
