"""Conversations past the retention period are purged with their messages, provenance and knowledge gaps; recent
ones stay; every purge is audited with counts only."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from appliance.conversations import chat
from appliance.instance import Instance, cli_context
from appliance.retention import conversations
from tests.conftest import Seed


def test_old_conversations_are_purged_with_what_hangs_off_them(inst: Instance, seed: Seed) -> None:
    old = chat.ask(inst.db, inst.answers, cli_context(seed.north), seed.north, "Is there parking for visitors?")
    new = chat.ask(inst.db, inst.answers, cli_context(seed.north), seed.north, "Where do I pay my bill?")
    assert old.answer is not None and old.answer.outcome == "refused"  # an empty knowledge base: a gap
    long_ago = (datetime.now(UTC) - timedelta(days=800)).isoformat(timespec="seconds")
    with inst.db.write() as conn:
        conn.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (long_ago, old.conversation_id))
        conn.execute("UPDATE knowledge_gaps SET created_at = ? WHERE message_id = ?", (long_ago, old.message_id))

    dry = conversations.purge(inst.db, cli_context(), 730, dry_run=True)
    assert [(r.org_id, r.conversations, r.messages, r.knowledge_gaps) for r in dry if r.conversations] == [(seed.north, 1, 2, 1)]
    with inst.db.read() as conn:
        assert conn.execute("SELECT count(*) FROM conversations").fetchone()[0] == 2

    done = conversations.purge(inst.db, cli_context(), 730)
    assert sum(r.conversations for r in done) == 1
    with inst.db.read() as conn:
        left = [r[0] for r in conn.execute("SELECT id FROM conversations")]
        messages = conn.execute("SELECT count(*) FROM messages WHERE conversation_id = ?", (old.conversation_id,)).fetchone()[0]
        gaps = [r[0] for r in conn.execute("SELECT message_id FROM knowledge_gaps")]
        event = conn.execute("SELECT details FROM audit_events WHERE action = 'retention.purged'").fetchone()[0]
    assert left == [new.conversation_id] and messages == 0 and gaps == [new.message_id]
    assert json.loads(event)["conversations"] == 1 and "parking" not in event
    assert inst.db.integrity_check() == ["ok"]
