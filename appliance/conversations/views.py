"""Conversations as people read them: the filtered list, the transcript, and the handoff package an agent gets.

Visibility: a role that may view all conversations sees every one of its organisation; an agent sees the ones
assigned to them and the escalated ones waiting in their teams' queues (or the organisation-wide queue). Any
other conversation is "not found" to them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from appliance import audit
from appliance.answering.engine import AnswerEngine
from appliance.audit.events import Context, ConversationRead
from appliance.conversations import customers, events, notes
from appliance.conversations.flow import conversation_row, state_frame
from appliance.conversations.summary import Summaries
from appliance.errors import InvalidValue, NotFound
from appliance.inference.base import Generator
from appliance.store import Connection, Database

STATUSES = ("active", "waiting", "escalated", "resolved", "closed")
SENTIMENTS = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class Viewer:
    user_id: int
    view_all: bool


def visible_sql(viewer: Viewer) -> tuple[str, list[Any]]:
    """The SQL condition (over `conversations c`) and its parameters for the conversations the viewer may see."""
    if viewer.view_all:
        return "1", []
    return (
        "(c.assigned_agent_id = ? OR (c.status = 'escalated' AND c.assigned_agent_id IS NULL AND (c.team_id IS NULL"
        " OR c.team_id IN (SELECT team_id FROM team_members WHERE user_id = ?))))", [viewer.user_id, viewer.user_id],
    )  # fmt: skip


def visible(conn: Connection, org_id: int, conversation_id: int, viewer: Viewer) -> Any:
    where, params = visible_sql(viewer)
    row = conn.execute(f"SELECT c.* FROM conversations c WHERE c.id = ? AND c.org_id = ? AND {where}",
                       (conversation_id, org_id, *params)).fetchone()  # fmt: skip
    if row is None:
        raise NotFound(f"conversation {conversation_id} not found")
    return row


def conversation(db: Database, org_id: int, conversation_id: int, viewer: Viewer) -> dict[str, Any]:
    """One conversation as lists show it (its state, not its transcript: not audited as a read); NotFound unless
    the viewer may see it."""
    with db.read() as conn:
        row = visible(conn, org_id, conversation_id, viewer)
        agent = conn.execute("SELECT name, email FROM users WHERE id = ?", (row["assigned_agent_id"],)).fetchone()
    return events.conversation_summary(row, (agent["name"] or agent["email"]) if agent else None)


def list_conversations(
    db: Database, org_id: int, viewer: Viewer, *, status: str | None = None, agent_id: int | None = None,
    sentiment: str | None = None, topic: str | None = None, priority: str | None = None, team_id: int | None = None,
    limit: int = 100, before: int | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    where, params = visible_sql(viewer)
    sql = ("SELECT c.*, u.name AS agent_name FROM conversations c LEFT JOIN users u ON u.id = c.assigned_agent_id"
           f" WHERE c.org_id = ? AND {where}")  # fmt: skip
    args: list[Any] = [org_id, *params]
    if status is not None:
        if status not in STATUSES:
            raise InvalidValue(f"status must be one of {', '.join(STATUSES)}")
        sql += " AND c.status = ?"
        args.append(status)
    if sentiment is not None:
        if sentiment not in SENTIMENTS:
            raise InvalidValue(f"sentiment must be one of {', '.join(SENTIMENTS)}")
        sql += " AND c.sentiment_label = ?"
        args.append(sentiment)
    for column, value in (("assigned_agent_id", agent_id), ("topic", topic), ("priority", priority),
                          ("team_id", team_id)):  # fmt: skip
        if value is not None:
            sql += f" AND c.{column} = ?"
            args.append(value)
    if before is not None:
        sql += " AND c.id < ?"
        args.append(before)
    sql += " ORDER BY c.id DESC LIMIT ?"  # newest first; `before` (the last id of a page) gives the next page
    args.append(limit)
    with db.read() as conn:
        return [events.conversation_summary(r, r["agent_name"]) for r in conn.execute(sql, args)]


def _agent_names(conn: Connection, conversation_id: int) -> dict[str, str]:
    rows = conn.execute(
        "SELECT DISTINCT m.sender, u.name, u.email FROM messages m JOIN users u ON 'user:' || u.id = m.sender"
        " WHERE m.conversation_id = ? AND m.role = 'agent'", (conversation_id,),
    ).fetchall()  # fmt: skip
    return {r["sender"]: r["name"] or r["email"].split("@")[0] for r in rows}


def transcript(conn: Connection, conversation_id: int, after: int = 0, staff: bool = True) -> list[dict[str, Any]]:
    names = _agent_names(conn, conversation_id)
    rows = conn.execute("SELECT * FROM messages WHERE conversation_id = ? AND id > ? ORDER BY id",
                        (conversation_id, after)).fetchall()  # fmt: skip
    shape = events.staff_message if staff else events.public_message
    return [shape(r, names.get(r["sender"] or "")) for r in rows]


def visitor_view(db: Database, org_id: int, conversation_id: int, visitor_id: str, after: int = 0) -> dict[str, Any]:
    """What the customer's widget restores after a reload: the state and the messages after `after`."""
    with db.read() as conn:
        row = conversation_row(conn, org_id, conversation_id, visitor_id)
        state = state_frame(conn, conversation_id)
        return {"conversation_id": conversation_id, "status": row["status"], "handled_by": row["handled_by"],
                "agent": state["agent"], "rated": row["csat"] is not None,
                "messages": transcript(conn, conversation_id, after, staff=False)}  # fmt: skip


def handoff(db: Database, ctx: Context, org_id: int, conversation_id: int, viewer: Viewer,
            engine: Callable[[], AnswerEngine] | None, canned: list[dict[str, Any]] | None = None,
            summaries: Summaries | None = None, writer: Generator | None = None) -> dict[str, Any]:  # fmt: skip
    """Everything an agent needs to take over: the conversation, its transcript with the AI answers' confidence and
    sources, the sentiment trend, the customer and their history, the decisions taken, a summary (written by
    `writer`, a validated chat model, when there is one), and a suggested resolution (the best articles and a
    drafted reply); and the staff's internal notes. Reading it is audited."""
    with db.write() as conn:
        row = visible(conn, org_id, conversation_id, viewer)
        audit.record(conn, ctx, ConversationRead(conversation_id))
        agent = conn.execute("SELECT name FROM users WHERE id = ?", (row["assigned_agent_id"],)).fetchone()
        messages = transcript(conn, conversation_id)
        decisions = [
            {"rule_id": d["rule_id"], "trigger_type": d["trigger_type"], "action": d["action"], "team_id": d["team_id"],
             "reason": d["reason"], "inputs": json.loads(d["inputs"]), "message_id": d["message_id"],
             "created_at": d["created_at"]}
            for d in conn.execute("SELECT * FROM escalation_decisions WHERE conversation_id = ? ORDER BY id",
                                  (conversation_id,))
        ]  # fmt: skip
        profile = customers.profile(conn, org_id, row["customer_id"])
        staff_notes = notes.list_notes(conn, conversation_id)
    customer = [m for m in messages if m["role"] == "customer"]
    customer_texts = [m["content"] for m in customer]
    written = (summaries or Summaries()).get(conversation_id, customer[-1]["id"] if customer else 0, customer_texts,
                                             writer)  # fmt: skip
    queries = [m["query"] or m["content"] for m in messages if m["role"] == "customer"]
    suggestion: dict[str, Any] = {"articles": [], "draft": None, "confidence": None, "sources": []}
    if engine is not None and queries:
        draft, articles = engine().draft(org_id, queries[-1])
        suggestion["articles"] = [{"article_id": a.article_id, "version": a.version, "title": a.title,
                                   "score": round(a.score, 4)} for a in articles[:3]]  # fmt: skip
        if draft is not None:
            suggestion.update(draft=draft.text, confidence=draft.confidence,
                              sources=[s.public() for s in draft.sources])  # fmt: skip
    return {
        "conversation": events.conversation_summary(row, agent["name"] if agent else None),
        "messages": messages,
        "notes": staff_notes,
        "handoff": {
            "summary": written.text,
            "summary_mode": written.mode,
            "summary_model": written.info.get("model"),
            "summary_check": {k: v for k, v in written.info.items() if k != "raw"} or None,
            "sentiment_trend": [{"message_id": m["id"], "score": m["sentiment"], "label": m["sentiment_label"],
                                 "at": m["created_at"]} for m in messages if m["role"] == "customer"],  # fmt: skip
            "ai_answers": [{"message_id": m["id"], "outcome": m["outcome"], "confidence": m["confidence"],
                            "sources": m["sources"], "feedback": m["feedback"]}
                           for m in messages if m["role"] == "ai"],  # fmt: skip
            "customer": profile,
            "topic": row["topic"],
            "decisions": decisions,
            "suggestion": suggestion,
            "canned_replies": canned or [],
        },
    }
