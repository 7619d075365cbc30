"""Retention covers what the conversation flow stores beside messages: escalation decisions, webhook deliveries
(their payloads quote messages), the staff's internal notes and read bookmarks, and customers left with nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from appliance.conversations import customers, inbox, notes
from appliance.escalation.rules import RuleInput, create_rule
from appliance.instance import Instance, cli_context
from appliance.retention.conversations import purge
from appliance.webhooks import manage
from tests.conftest import Seed


def test_purge_takes_decisions_deliveries_and_orphaned_customers(inst: Instance, seed: Seed) -> None:
    ctx = cli_context(seed.north)
    create_rule(inst.db, ctx, seed.north, RuleInput("complaints", "keyword", r"\bcomplaint\b"))
    manage.create(inst.db, ctx, seed.north, "http://127.0.0.1:9/hook", ["message.created", "conversation.created"])
    old_customer = customers.upsert_identified(inst.db, seed.north, "emp-1", "old@north.example")
    kept_customer = customers.upsert_identified(inst.db, seed.north, "emp-2", "new@north.example")
    old, _ = inst.flow.ask(ctx, seed.north, "I have a complaint about my bill", sender="visitor:a",
                           customer_id=old_customer, visitor_id="a")  # fmt: skip
    new, _ = inst.flow.ask(ctx, seed.north, "Another complaint", sender="visitor:b", customer_id=kept_customer,
                           visitor_id="b")  # fmt: skip
    assert old.decisions and old.status == "escalated"
    with inst.db.read() as conn:
        staff = int(conn.execute("SELECT id FROM users WHERE email = ?", (Seed.email("agent"),)).fetchone()[0])
    for conversation_id in (old.conversation_id, new.conversation_id):
        notes.add_note(inst.db, ctx, seed.north, conversation_id, staff, "Called the customer back")
        inbox.mark_read(inst.db, staff, conversation_id)
    long_ago = "2020-01-01T00:00:00.000000Z"
    with inst.db.write() as conn:
        conn.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (long_ago, old.conversation_id))
        conn.execute("UPDATE customers SET last_contact_at = ? WHERE id = ?", (long_ago, old_customer))
        conn.execute("UPDATE webhook_deliveries SET created_at = ? WHERE conversation_id = ?",
                     ("2026-11-01T00:00:00.000000Z", old.conversation_id))  # fmt: skip
    with inst.db.read() as conn:
        assert conn.execute("SELECT count(*) FROM webhook_deliveries WHERE conversation_id = ?",
                            (old.conversation_id,)).fetchone()[0] == 3  # created, the message, who is coming  # fmt: skip
    purged = purge(inst.db, ctx, 365, now=datetime.now(UTC) + timedelta(days=1))
    assert sum(p.conversations for p in purged) == 1
    with inst.db.read() as conn:
        left = {t: conn.execute(f"SELECT count(*) FROM {t} WHERE conversation_id = ?", (old.conversation_id,)).fetchone()[0]
                for t in ("messages", "escalation_decisions", "webhook_deliveries", "conversation_notes",
                          "conversation_reads")}  # fmt: skip
        assert set(left.values()) == {0}
        assert [tuple(r) for r in conn.execute("SELECT conversation_id FROM conversation_notes UNION ALL"
                                               " SELECT conversation_id FROM conversation_reads")] == [
            (new.conversation_id,), (new.conversation_id,)]  # fmt: skip
        assert [r[0] for r in conn.execute("SELECT id FROM customers ORDER BY id")] == [kept_customer]
        assert conn.execute("SELECT count(*) FROM escalation_decisions WHERE conversation_id = ?",
                            (new.conversation_id,)).fetchone()[0] == 1  # fmt: skip
