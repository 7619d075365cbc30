"""Internal notes: what staff write on a conversation for each other. Never sent to the customer: a note's frame
goes only to the staff watching the conversation, and the widget's views never read this table. Adding a note is
audited (ids only); reading notes is part of reading the conversation, which is audited there."""

from __future__ import annotations

from typing import Any

from appliance import audit
from appliance.audit.events import Context, NoteAdded
from appliance.conversations import events
from appliance.conversations.events import Event
from appliance.errors import InvalidValue, NotFound
from appliance.store import Connection, Database, now_iso

MAX_NOTE_CHARS = 4000


def _note(row: Any) -> dict[str, Any]:
    return {"id": int(row["id"]), "conversation_id": int(row["conversation_id"]), "author_id": int(row["author_id"]),
            "author": row["author"], "body": row["body"], "created_at": row["created_at"]}  # fmt: skip


_SELECT = ("SELECT n.*, coalesce(nullif(u.name, ''), u.email) AS author FROM conversation_notes n"
           " JOIN users u ON u.id = n.author_id")  # fmt: skip


def list_notes(conn: Connection, conversation_id: int) -> list[dict[str, Any]]:
    return [_note(r) for r in conn.execute(_SELECT + " WHERE n.conversation_id = ? ORDER BY n.id", (conversation_id,))]


def add_note(db: Database, ctx: Context, org_id: int, conversation_id: int, author_id: int,
             body: str) -> tuple[dict[str, Any], list[Event]]:  # fmt: skip
    """Store a note on a conversation the caller has already been allowed to see; returns it and its staff frame."""
    body = body.strip()
    if not body:
        raise InvalidValue("the note is empty")
    if len(body) > MAX_NOTE_CHARS:
        raise InvalidValue(f"a note is at most {MAX_NOTE_CHARS} characters")
    with db.write() as conn:
        found = conn.execute("SELECT 1 FROM conversations WHERE id = ? AND org_id = ?", (conversation_id, org_id))
        if found.fetchone() is None:
            raise NotFound(f"conversation {conversation_id} not found")
        note_id = conn.execute(
            "INSERT INTO conversation_notes (org_id, conversation_id, author_id, body, created_at)"
            " VALUES (?, ?, ?, ?, ?)", (org_id, conversation_id, author_id, body, now_iso()),
        ).lastrowid  # fmt: skip
        assert note_id is not None
        audit.record(conn, ctx, NoteAdded(conversation_id, int(note_id)))
        note = _note(conn.execute(_SELECT + " WHERE n.id = ?", (note_id,)).fetchone())
    return note, [Event((events.watchers(conversation_id),), {"type": "note", "note": note})]
