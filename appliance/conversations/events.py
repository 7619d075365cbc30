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
    }  # fmt: skip


def staff_message(row: Any, agent_name: str | None = None) -> dict[str, Any]:
    """A message as an agent sees it: the public view plus sentiment, mode, model and sender."""
    return {
        **public_message(row, agent_name), "sentiment": row["sentiment"], "sentiment_label": row["sentiment_label"],
        "mode": row["mode"], "model": row["model"], "sender": row["sender"], "query": row["query"],
    }  # fmt: skip
