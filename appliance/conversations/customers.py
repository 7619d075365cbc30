"""Customers: who a conversation is with, their totals and their history.

A customer is found by the external id an intranet vouches for (a signed identity), else created. The totals
(conversations, messages, average sentiment, last contact) are updated in the transaction that stores each
message, so they always agree with the conversations.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from appliance import audit
from appliance.audit.events import Context, CustomerHistoryRead
from appliance.errors import InvalidValue, NotFound
from appliance.store import Connection, Database, now_iso


@dataclass(frozen=True)
class Customer:
    id: int
    org_id: int
    external_id: str | None
    email: str | None
    name: str
    lifetime_value: float
    total_conversations: int
    total_messages: int
    average_sentiment: float | None
    last_contact_at: str | None
    created_at: str

    def public(self) -> dict[str, Any]:
        return asdict(self)


def _customer(row: Any) -> Customer:
    count = int(row["sentiment_count"])
    return Customer(
        int(row["id"]), int(row["org_id"]), row["external_id"], row["email"], row["name"],
        float(row["lifetime_value"]), int(row["total_conversations"]), int(row["total_messages"]),
        round(float(row["sentiment_sum"]) / count, 1) if count else None, row["last_contact_at"], row["created_at"],
    )  # fmt: skip


def upsert_identified(db: Database, org_id: int, external_id: str, email: str, name: str = "") -> int:
    """The customer with this external id (created, or its email and name brought up to date)."""
    if not external_id or len(external_id) > 200 or len(email) > 320 or len(name) > 200:
        raise InvalidValue("identity: user_id must be 1-200 characters, email at most 320, name at most 200")
    with db.write() as conn:
        row = conn.execute("SELECT id FROM customers WHERE org_id = ? AND external_id = ?",
                           (org_id, external_id)).fetchone()  # fmt: skip
        if row is not None:
            conn.execute("UPDATE customers SET email = ?, name = CASE WHEN ? = '' THEN name ELSE ? END WHERE id = ?",
                         (email or None, name, name, row["id"]))  # fmt: skip
            return int(row["id"])
        new_id = conn.execute(
            "INSERT INTO customers (org_id, external_id, email, name, created_at) VALUES (?, ?, ?, ?, ?)",
            (org_id, external_id, email or None, name, now_iso()),
        ).lastrowid
        assert new_id is not None
        return int(new_id)


def get(conn: Connection, org_id: int, customer_id: int) -> Customer:
    row = conn.execute("SELECT * FROM customers WHERE id = ? AND org_id = ?", (customer_id, org_id)).fetchone()
    if row is None:
        raise NotFound(f"customer {customer_id} not found")
    return _customer(row)


def counted_message(conn: Connection, customer_id: int, sentiment: float | None, now: str) -> None:
    conn.execute(
        "UPDATE customers SET total_messages = total_messages + 1, last_contact_at = ?,"
        " sentiment_sum = sentiment_sum + coalesce(?, 0), sentiment_count = sentiment_count + (? IS NOT NULL)"
        " WHERE id = ?", (now, sentiment, sentiment, customer_id),
    )  # fmt: skip


def counted_conversation(conn: Connection, customer_id: int) -> None:
    conn.execute("UPDATE customers SET total_conversations = total_conversations + 1 WHERE id = ?", (customer_id,))


def set_lifetime_value(db: Database, org_id: int, customer_id: int, value: float) -> Customer:
    if value < 0:
        raise InvalidValue("lifetime_value must not be negative")
    with db.write() as conn:
        get(conn, org_id, customer_id)
        conn.execute("UPDATE customers SET lifetime_value = ? WHERE id = ?", (value, customer_id))
        return get(conn, org_id, customer_id)


def history(db: Database, ctx: Context, org_id: int, customer_id: int, limit: int = 50) -> dict[str, Any]:
    """The customer's profile and their conversations, newest first; the read is audited."""
    with db.write() as conn:
        customer = get(conn, org_id, customer_id)
        rows = conn.execute(
            "SELECT c.id, c.channel, c.status, c.topic, c.priority, c.sentiment, c.resolution_type, c.csat,"
            " c.created_at, c.updated_at, c.escalation_reason, (SELECT count(*) FROM messages m"
            " WHERE m.conversation_id = c.id) AS messages FROM conversations c WHERE c.customer_id = ? AND c.org_id = ?"
            " ORDER BY c.id DESC LIMIT ?", (customer_id, org_id, limit),
        ).fetchall()  # fmt: skip
        audit.record(conn, ctx, CustomerHistoryRead(customer_id))
    return {"customer": customer.public(), "conversations": [dict(r) for r in rows]}


def profile(conn: Connection, org_id: int, customer_id: int | None) -> dict[str, Any] | None:
    """The profile and the last few other conversations, for the handoff package (not audited on its own: the
    conversation read that includes it is)."""
    if customer_id is None:
        return None
    customer = get(conn, org_id, customer_id)
    recent = conn.execute(
        "SELECT id, status, topic, resolution_type, csat, created_at FROM conversations WHERE customer_id = ?"
        " ORDER BY id DESC LIMIT 6", (customer_id,),
    ).fetchall()  # fmt: skip
    return {**customer.public(), "recent_conversations": [dict(r) for r in recent]}
