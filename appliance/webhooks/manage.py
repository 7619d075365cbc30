"""Webhooks as an admin manages them (manage_integrations): create, change, rotate the secret, delete, and the
delivery log with its redeliver button. Every change is audited in the transaction that makes it.

The secret is shown once, when the hook is created or its secret rotated; it is stored in the database (encrypted
at rest, like everything in it) because signing needs it in the clear. Deleting a hook deletes its delivery log
too: the rows hold event payloads, which may quote customers, and a log of a hook that no longer exists serves
nobody; the audit trail keeps the hook's history.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from appliance import audit
from appliance.audit.events import Context, WebhookChanged
from appliance.errors import Conflict, InvalidValue, NotFound
from appliance.store import Connection, Database, now_iso
from appliance.webhooks import signing
from appliance.webhooks.outbox import EVENTS, iso

MAX_URL_CHARS = 2048
# Bounded so that queueing an event (a read of the organisation's hooks in the caller's transaction) stays cheap.
MAX_WEBHOOKS_PER_ORG = 20
MAX_LOG_ROWS = 1000


@dataclass(frozen=True)
class Webhook:
    id: int
    org_id: int
    url: str
    events: list[str]
    active: bool
    created_by: str
    created_at: str


@dataclass(frozen=True)
class Delivery:
    id: int
    webhook_id: int
    event: str
    event_id: str
    conversation_id: int | None
    status: str  # pending | delivered | failed
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: str
    delivered_at: str | None
    next_attempt_at: str | None  # None once delivered or failed: nothing more is scheduled
    payload: dict[str, Any] | None = None  # only when asked for


def _webhook(row: Any) -> Webhook:
    return Webhook(int(row["id"]), int(row["org_id"]), str(row["url"]), list(json.loads(row["events"])),
                   bool(row["active"]), str(row["created_by"]), str(row["created_at"]))  # fmt: skip


def _delivery(row: Any, with_payload: bool) -> Delivery:
    pending = row["status"] == "pending"
    return Delivery(
        int(row["id"]), int(row["webhook_id"]), str(row["event"]), str(row["event_id"]),
        None if row["conversation_id"] is None else int(row["conversation_id"]), str(row["status"]),
        int(row["attempts"]), None if row["last_status_code"] is None else int(row["last_status_code"]),
        row["last_error"], str(row["created_at"]), row["delivered_at"],
        str(row["next_attempt_at"]) if pending else None,
        json.loads(row["payload"]) if with_payload else None,
    )  # fmt: skip


def validate_url(url: str) -> str:
    url = url.strip()
    if not url or len(url) > MAX_URL_CHARS or any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidValue(f"a webhook URL needs 1 to {MAX_URL_CHARS} characters and no spaces")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number in range
    except ValueError:
        raise InvalidValue("the webhook URL is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidValue("a webhook URL must be http:// or https:// with a host")
    if parts.fragment:
        raise InvalidValue("a webhook URL cannot have a #fragment")
    return url


def validate_events(events: Iterable[str]) -> list[str]:
    chosen = set(events)
    unknown = sorted(chosen - set(EVENTS))
    if unknown:
        raise InvalidValue(f"unknown webhook events {', '.join(unknown)}; events are: {', '.join(EVENTS)}")
    if not chosen:
        raise InvalidValue(f"choose at least one event: {', '.join(EVENTS)}")
    return [e for e in EVENTS if e in chosen]


def audit_url(url: str) -> str:
    """The URL as the audit trail keeps it: without user:password or query, which may carry the receiver's
    credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _audit(conn: Connection, ctx: Context, hook: Webhook, change: str) -> None:
    audit.record(conn, ctx, WebhookChanged(hook.id, change, audit_url(hook.url), list(hook.events)))


def _load(conn: Connection, org_id: int, webhook_id: int) -> Webhook:
    row = conn.execute("SELECT * FROM webhooks WHERE id = ? AND org_id = ?", (webhook_id, org_id)).fetchone()
    if row is None:
        raise NotFound(f"webhook {webhook_id} not found")
    return _webhook(row)


def list_webhooks(db: Database, org_id: int) -> list[Webhook]:
    with db.read() as conn:
        rows = conn.execute("SELECT * FROM webhooks WHERE org_id = ? ORDER BY id", (org_id,)).fetchall()
    return [_webhook(r) for r in rows]


def get(db: Database, org_id: int, webhook_id: int) -> Webhook:
    with db.read() as conn:
        return _load(conn, org_id, webhook_id)


def create(db: Database, ctx: Context, org_id: int, url: str, events: Iterable[str],
           active: bool = True) -> tuple[Webhook, str]:  # fmt: skip
    """A new hook and its secret (`whsec_...`), which is never shown again."""
    url, chosen = validate_url(url), validate_events(events)
    secret = signing.new_secret()
    with db.write() as conn:
        count = conn.execute("SELECT count(*) FROM webhooks WHERE org_id = ?", (org_id,)).fetchone()[0]
        if count >= MAX_WEBHOOKS_PER_ORG:
            raise Conflict(f"an organisation has at most {MAX_WEBHOOKS_PER_ORG} webhooks")
        cursor = conn.execute(
            "INSERT INTO webhooks (org_id, url, secret, events, active, created_by, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (org_id, url, secret, json.dumps(chosen), int(active), ctx.actor, now_iso()),
        )  # fmt: skip
        assert cursor.lastrowid is not None
        hook = _load(conn, org_id, int(cursor.lastrowid))
        _audit(conn, ctx, hook, "created")
    return hook, secret


def update(
    db: Database, ctx: Context, org_id: int, webhook_id: int, *, url: str | None = None,
    events: Iterable[str] | None = None, active: bool | None = None,
) -> Webhook:  # fmt: skip
    """Change the URL, the events or whether the hook is active; what is not given stays. Deliveries already
    queued keep going to the hook (to its new URL); a deactivated hook's pending deliveries wait until it is
    active again."""
    new_url = validate_url(url) if url is not None else None
    new_events = validate_events(events) if events is not None else None
    with db.write() as conn:
        hook = _load(conn, org_id, webhook_id)
        conn.execute(
            "UPDATE webhooks SET url = ?, events = ?, active = ? WHERE id = ?",
            (new_url if new_url is not None else hook.url,
             json.dumps(new_events if new_events is not None else hook.events),
             int(active if active is not None else hook.active), webhook_id),
        )  # fmt: skip
        changed = _load(conn, org_id, webhook_id)
        if changed != hook:
            _audit(conn, ctx, changed, "updated")
    return changed


def delete(db: Database, ctx: Context, org_id: int, webhook_id: int) -> None:
    """Delete the hook and its delivery log (queued deliveries are dropped with it)."""
    with db.write() as conn:
        hook = _load(conn, org_id, webhook_id)
        conn.execute("DELETE FROM webhook_deliveries WHERE webhook_id = ?", (webhook_id,))
        conn.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,))
        _audit(conn, ctx, hook, "deleted")


def rotate_secret(db: Database, ctx: Context, org_id: int, webhook_id: int) -> tuple[Webhook, str]:
    """A new secret, in force at once (also for deliveries already queued); shown only here."""
    secret = signing.new_secret()
    with db.write() as conn:
        hook = _load(conn, org_id, webhook_id)
        conn.execute("UPDATE webhooks SET secret = ? WHERE id = ?", (secret, webhook_id))
        _audit(conn, ctx, hook, "secret_rotated")
    return hook, secret


def deliveries(
    db: Database, org_id: int, webhook_id: int, limit: int = 100, include_payload: bool = False
) -> list[Delivery]:
    """The hook's delivery log, newest first."""
    limit = max(1, min(limit, MAX_LOG_ROWS))
    with db.read() as conn:
        _load(conn, org_id, webhook_id)
        rows = conn.execute(
            "SELECT * FROM webhook_deliveries WHERE webhook_id = ? AND org_id = ? ORDER BY id DESC LIMIT ?",
            (webhook_id, org_id, limit),
        ).fetchall()
    return [_delivery(r, include_payload) for r in rows]


def get_delivery(db: Database, org_id: int, delivery_id: int, include_payload: bool = False) -> Delivery:
    with db.read() as conn:
        row = conn.execute(
            "SELECT * FROM webhook_deliveries WHERE id = ? AND org_id = ?", (delivery_id, org_id)
        ).fetchone()
    if row is None:
        raise NotFound(f"webhook delivery {delivery_id} not found")
    return _delivery(row, include_payload)


def redeliver(db: Database, ctx: Context, org_id: int, delivery_id: int, now: datetime | None = None) -> Delivery:
    """Give a failed delivery a fresh set of attempts, the first one due now."""
    with db.write() as conn:
        row = conn.execute(
            "SELECT * FROM webhook_deliveries WHERE id = ? AND org_id = ?", (delivery_id, org_id)
        ).fetchone()
        if row is None:
            raise NotFound(f"webhook delivery {delivery_id} not found")
        if row["status"] != "failed":
            raise Conflict(f"only a failed delivery can be redelivered; this one is {row['status']}")
        conn.execute(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = ? WHERE id = ?",
            (iso(now or datetime.now(UTC)), delivery_id),
        )
        hook = _load(conn, org_id, int(row["webhook_id"]))
        _audit(conn, ctx, hook, "redelivered")
        updated = conn.execute("SELECT * FROM webhook_deliveries WHERE id = ?", (delivery_id,)).fetchone()
    return _delivery(updated, False)
