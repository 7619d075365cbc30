"""What the conversation flow tells the real-time hub. The flow returns events; the web layer publishes them after
the transaction that produced them has committed, so nothing is pushed that the database does not hold.

Channels:
- `visitor:<conversation id>`: the customer's widget (public frames only: no sentiment, no reasons, no tags);
- `conversation:<conversation id>`: agents and managers watching the conversation;
- `agent:<user id>`: one agent's alerts and assignments;
- `org:<org id>`: every console of the organisation (list updates).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Event:
    channels: tuple[str, ...]
    frame: dict[str, Any]


def visitor(conversation_id: int) -> str:
    return f"visitor:{conversation_id}"


def watchers(conversation_id: int) -> str:
    return f"conversation:{conversation_id}"


def agent(user_id: int) -> str:
    return f"agent:{user_id}"


def org(org_id: int) -> str:
    return f"org:{org_id}"


def public_message(row: Any, agent_name: str | None = None) -> dict[str, Any]:
    """A message as the customer's widget shows it."""
    return {
        "id": int(row["id"]), "conversation_id": int(row["conversation_id"]), "role": row["role"],
        "content": row["content"], "created_at": row["created_at"], "client_id": row["client_id"],
        "outcome": row["outcome"], "confidence": row["confidence"], "sources": json.loads(row["sources"] or "[]"),
        "agent": agent_name if row["role"] == "agent" else None, "feedback": row["feedback"],
        "suggestions": json.loads(row["suggestions"] or "[]"),
    }  # fmt: skip


def staff_message(row: Any, agent_name: str | None = None) -> dict[str, Any]:
    """A message as an agent sees it: the public view plus sentiment, mode, model and sender."""
    return {
        **public_message(row, agent_name), "sentiment": row["sentiment"], "sentiment_label": row["sentiment_label"],
        "mode": row["mode"], "model": row["model"], "sender": row["sender"], "query": row["query"],
    }  # fmt: skip


def conversation_summary(row: Any, agent_name: str | None = None) -> dict[str, Any]:
    """A conversation as lists and list updates show it (staff only)."""
    return {
        "id": int(row["id"]), "channel": row["channel"], "status": row["status"], "handled_by": row["handled_by"],
        "customer_id": row["customer_id"], "team_id": row["team_id"], "assigned_agent_id": row["assigned_agent_id"],
        "assigned_agent": agent_name, "sentiment": row["sentiment"], "sentiment_label": row["sentiment_label"],
        "topic": row["topic"], "priority": row["priority"], "tags": tags_of(row["tags"]),
        "resolution_type": row["resolution_type"], "csat": row["csat"], "csat_comment": row["csat_comment"],
        "escalation_reason": row["escalation_reason"], "bot_turns": row["bot_turns"],
        "failed_attempts": row["failed_attempts"], "created_at": row["created_at"], "updated_at": row["updated_at"],
        "escalated_at": row["escalated_at"], "first_response_at": row["first_response_at"],
        "resolved_at": row["resolved_at"],
    }  # fmt: skip


def tags_of(raw: str) -> list[str]:
    """A conversation's tags column (a JSON list)."""
    value = json.loads(raw)
    return [str(t) for t in value] if isinstance(value, list) else []
