"""Canned replies: an organisation's ready-made answers that agents insert and adapt."""

from __future__ import annotations

from typing import Any

from appliance import audit
from appliance.audit.events import Context, RoutingChanged
from appliance.errors import Conflict, InvalidValue, NotFound
from appliance.store import Database, now_iso, unique_violation


def list_replies(db: Database, org_id: int) -> list[dict[str, Any]]:
    with db.read() as conn:
        return [dict(r) for r in conn.execute("SELECT id, title, body, created_by, created_at FROM canned_replies"
                                              " WHERE org_id = ? ORDER BY title", (org_id,))]  # fmt: skip


def add_reply(db: Database, ctx: Context, org_id: int, title: str, body: str) -> dict[str, Any]:
    title, body = title.strip(), body.strip()
    if not 1 <= len(title) <= 120 or not 1 <= len(body) <= 4000:
        raise InvalidValue("title must be 1-120 characters and body 1-4000")
    try:
        with db.write() as conn:
            new_id = conn.execute("INSERT INTO canned_replies (org_id, title, body, created_by, created_at)"
                                  " VALUES (?, ?, ?, ?, ?)", (org_id, title, body, ctx.actor, now_iso())).lastrowid  # fmt: skip
            assert new_id is not None
            audit.record(conn, ctx, RoutingChanged("canned_reply", int(new_id), "created", {"title": title}))
    except Exception as exc:
        if unique_violation(exc):
            raise Conflict(f"a canned reply titled {title!r} exists") from None
        raise
    return next(r for r in list_replies(db, org_id) if r["id"] == new_id)


def delete_reply(db: Database, ctx: Context, org_id: int, reply_id: int) -> None:
    with db.write() as conn:
        if not conn.execute("DELETE FROM canned_replies WHERE id = ? AND org_id = ?", (reply_id, org_id)).rowcount:
            raise NotFound(f"canned reply {reply_id} not found")
        audit.record(conn, ctx, RoutingChanged("canned_reply", reply_id, "deleted", {}))
