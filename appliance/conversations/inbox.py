"""The agent's inbox: the conversations a person may see, by queue ("mine", each team's waiting queue, the
organisation-wide one) and filters, each with its customer, the last message, and how many messages arrived since
that person last opened it.

Unread counts come from a per-person bookmark (conversation_reads): the newest message id they had seen when they
last opened the conversation. Their own messages never count as unread, nor do the service's notices to the
customer (who is coming, out of hours): the excerpt and the count are about what people wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appliance.conversations import events, routing
from appliance.conversations.flow import PRIORITIES
from appliance.conversations.views import SENTIMENTS, STATUSES, Viewer, visible_sql
from appliance.errors import InvalidValue
from appliance.store import Connection, Database, now_iso

OPEN = ("active", "waiting", "escalated")
EXCERPT_CHARS = 140
LIST_LIMIT = 100
WAITING = "c.status = 'escalated' AND c.assigned_agent_id IS NULL AND c.handled_by = 'ai'"


@dataclass(frozen=True)
class Filters:
    """queue: all | mine | waiting | team-<id> | unrouted; status: open | any | one status; the rest: "" for any."""

    queue: str = "all"
    status: str = "open"
    sentiment: str = ""
    topic: str = ""
    priority: str = ""

    def checked(self) -> Filters:
        if self.status not in ("open", "any", *STATUSES):
            raise InvalidValue(f"status must be open, any or one of {', '.join(STATUSES)}")
        if self.sentiment not in ("", *SENTIMENTS):
            raise InvalidValue(f"sentiment must be one of {', '.join(SENTIMENTS)}")
        if self.priority not in ("", *PRIORITIES):
            raise InvalidValue(f"priority must be one of {', '.join(PRIORITIES)}")
        if len(self.topic) > 200:
            raise InvalidValue("topic is at most 200 characters")
        _queue_sql(self.queue, 0)
        return self


@dataclass(frozen=True)
class Queue:
    key: str
    label: str
    count: int


def _queue_sql(queue: str, user_id: int) -> tuple[str, list[Any]]:
    if queue == "all":
        return "1", []
    if queue == "mine":
        return "c.assigned_agent_id = ?", [user_id]
    if queue == "waiting":
        return WAITING, []
    if queue == "unrouted":
        return f"{WAITING} AND c.team_id IS NULL", []
    if queue.startswith("team-") and queue[5:].isdigit():
        return f"{WAITING} AND c.team_id = ?", [int(queue[5:])]
    raise InvalidValue("queue must be all, mine, waiting, unrouted or team-<id>")


def _status_sql(status: str) -> tuple[str, list[Any]]:
    if status == "any":
        return "1", []
    if status == "open":
        return f"c.status IN ({', '.join('?' * len(OPEN))})", list(OPEN)
    return "c.status = ?", [status]


def _where(org_id: int, viewer: Viewer, filters: Filters) -> tuple[str, list[Any]]:
    parts: list[tuple[str, list[Any]]] = [
        ("c.org_id = ?", [org_id]), visible_sql(viewer), _queue_sql(filters.queue, viewer.user_id),
        _status_sql(filters.status),
    ]  # fmt: skip
    for column, value in (("sentiment_label", filters.sentiment), ("topic", filters.topic),
                          ("priority", filters.priority)):  # fmt: skip
        if value:
            parts.append((f"c.{column} = ?", [value]))
    return " AND ".join(f"({sql})" for sql, _ in parts), [p for _, params in parts for p in params]


def _excerpt(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1].rstrip() + "…"


def _customer_label(row: Any) -> str:
    return row["customer_name"] or row["customer_email"] or ("Customer" if row["customer_id"] else "Website visitor")


def list_inbox(db: Database, org_id: int, viewer: Viewer, filters: Filters,
               limit: int = LIST_LIMIT) -> list[dict[str, Any]]:  # fmt: skip
    """The conversations matching the filters, latest activity first, each with its customer, last message and
    unread count for this viewer."""
    where, params = _where(org_id, viewer, filters.checked())
    sql = (
        "SELECT c.*, u.name AS agent_name, cu.name AS customer_name, cu.email AS customer_email,"
        " lm.role AS last_role, lm.content AS last_content,"
        " (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id"
        "  AND m.id > coalesce(r.last_read_message_id, 0) AND coalesce(m.sender, '') != ?"
        "  AND coalesce(m.outcome, '') != 'notice') AS unread"
        " FROM conversations c"
        " LEFT JOIN users u ON u.id = c.assigned_agent_id"
        " LEFT JOIN customers cu ON cu.id = c.customer_id"
        " LEFT JOIN conversation_reads r ON r.conversation_id = c.id AND r.user_id = ?"
        " LEFT JOIN messages lm ON lm.id = (SELECT max(id) FROM messages WHERE conversation_id = c.id"
        "  AND coalesce(outcome, '') != 'notice')"
        f" WHERE {where} ORDER BY c.updated_at DESC, c.id DESC LIMIT ?"
    )  # fmt: skip
    with db.read() as conn:
        rows = conn.execute(sql, [f"user:{viewer.user_id}", viewer.user_id, *params, limit]).fetchall()
    return [{**events.conversation_summary(r, r["agent_name"]), "customer": _customer_label(r),
             "excerpt": _excerpt(r["last_content"]), "excerpt_role": r["last_role"], "unread": int(r["unread"])}
            for r in rows]  # fmt: skip


def _count(conn: Connection, org_id: int, viewer: Viewer, queue: str) -> int:
    where, params = _where(org_id, viewer, Filters(queue=queue))
    return int(conn.execute(f"SELECT count(*) FROM conversations c WHERE {where}", params).fetchone()[0])


def queues(db: Database, org_id: int, viewer: Viewer) -> list[Queue]:
    """The queues this viewer works from, with their open conversations counted: everything they can see, their
    own, everything waiting, each team's waiting queue (their own teams, or every team for a role that sees all),
    and the organisation-wide queue."""
    teams = routing.list_teams(db, org_id)
    with db.read() as conn:
        if not viewer.view_all:
            mine = set(routing.agent(conn, org_id, viewer.user_id).teams)
            teams = [t for t in teams if t.id in mine]
        wanted = [("all", "Everything"), ("mine", "Mine"), ("waiting", "Waiting")]
        wanted += [(f"team-{t.id}", f"{t.name} queue") for t in teams]
        wanted.append(("unrouted", "Organisation queue"))
        return [Queue(key, label, _count(conn, org_id, viewer, key)) for key, label in wanted]


def topics(db: Database, org_id: int) -> list[str]:
    """Topic names to filter by: the organisation's taxonomy and any topic a conversation carries."""
    with db.read() as conn:
        return [str(r[0]) for r in conn.execute(
            "SELECT name FROM topics WHERE org_id = ? UNION SELECT DISTINCT topic FROM conversations"
            " WHERE org_id = ? AND topic IS NOT NULL ORDER BY 1", (org_id, org_id))]  # fmt: skip


def mark_read(db: Database, user_id: int, conversation_id: int, up_to: int | None = None) -> int:
    """Move the person's bookmark to `up_to` (default: the newest message), never backwards and never past the
    conversation's newest message. Returns the bookmark."""
    with db.write() as conn:
        newest = conn.execute("SELECT max(id) FROM messages WHERE conversation_id = ? AND id <= ?",
                              (conversation_id, up_to if up_to is not None else 2**62)).fetchone()[0]  # fmt: skip
        if newest is None:
            return 0
        conn.execute(
            "INSERT INTO conversation_reads (user_id, conversation_id, last_read_message_id, read_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT(user_id, conversation_id) DO UPDATE SET"
            " last_read_message_id = max(last_read_message_id, excluded.last_read_message_id),"
            " read_at = excluded.read_at", (user_id, conversation_id, int(newest), now_iso()),
        )  # fmt: skip
        return int(conn.execute("SELECT last_read_message_id FROM conversation_reads WHERE user_id = ?"
                                " AND conversation_id = ?", (user_id, conversation_id)).fetchone()[0])  # fmt: skip
