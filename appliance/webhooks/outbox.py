"""Queue a webhook event: one delivery row per active hook of the organisation subscribed to it, written in the
caller's own write transaction, so the event is stored with the change that caused it or not at all. Sending is
`delivery.deliver_due`'s job; nothing here touches the network."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from appliance.errors import InvalidValue
from appliance.store import Connection

EVENTS = (
    "conversation.created",
    "conversation.escalated",
    "conversation.assigned",
    "conversation.resolved",
    "message.created",
    "csat.submitted",
)
ISO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # the store's timestamp format (text order is time order)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(ISO_FORMAT)


def enqueue(
    conn: Connection, org_id: int, event: str, data: dict[str, Any], conversation_id: int | None = None,
    *, now: datetime | None = None,
) -> list[int]:  # fmt: skip
    """Queue `event` for every active webhook of the organisation subscribed to it; the ids of the delivery rows
    written (none when no hook wants it). Call inside the write transaction of the change; then ask the tasks to
    deliver (web: `request.app.state.tasks.deliver_webhooks()`)."""
    if event not in EVENTS:
        raise InvalidValue(f"unknown webhook event {event!r}")
    if not conn.in_transaction:
        raise RuntimeError("webhooks.outbox.enqueue must run inside a write transaction")
    # One small read; an organisation without hooks pays nothing more (no payload is even serialised).
    hooks = conn.execute("SELECT id, events FROM webhooks WHERE org_id = ? AND active = 1", (org_id,)).fetchall()
    subscribed = [int(h[0]) for h in hooks if event in json.loads(h[1])]
    if not subscribed:
        return []
    created_at = iso(now or datetime.now(UTC))
    event_id = uuid.uuid4().hex
    payload = json.dumps(
        {"id": event_id, "event": event, "created_at": created_at, "org_id": org_id, "data": data},
        ensure_ascii=False, separators=(",", ":"),
    )  # fmt: skip
    ids = []
    for webhook_id in subscribed:
        cursor = conn.execute(
            "INSERT INTO webhook_deliveries (org_id, webhook_id, event, event_id, conversation_id, payload, status,"
            " attempts, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
            (org_id, webhook_id, event, event_id, conversation_id, payload, created_at, created_at),
        )  # fmt: skip
        assert cursor.lastrowid is not None
        ids.append(int(cursor.lastrowid))
    return ids
