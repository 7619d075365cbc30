"""Purge conversations whose last activity is older than the retention period, with their messages (and the
answers' provenance stored on them, and reviewers' labels on them), the knowledge gaps and escalation decisions
recorded from them, their webhook deliveries (whose payloads quote messages), the staff's internal notes and read
bookmarks on them, and customers left with no conversation and no recent contact. The analytics rollups stay: they
hold counts and durations, no customer text. Each organisation's purge is one transaction with its audit event, so
a purge is either whole and recorded, or not done."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from appliance import audit
from appliance.audit.events import Context, RetentionPurged
from appliance.errors import InvalidValue
from appliance.store import Database


@dataclass(frozen=True)
class Purged:
    org_id: int
    cutoff: str
    conversations: int
    messages: int
    knowledge_gaps: int


def purge(db: Database, ctx: Context, days: int, now: datetime | None = None, dry_run: bool = False) -> list[Purged]:
    if days < 1:
        raise InvalidValue("the retention period must be at least one day")
    cutoff = ((now or datetime.now(UTC)) - timedelta(days=days)).isoformat(timespec="seconds")
    with db.read() as conn:
        org_ids = [int(r[0]) for r in conn.execute("SELECT id FROM orgs ORDER BY id")]
    out = []
    for org_id in org_ids:
        with db.write() as conn:
            old = "SELECT id FROM conversations WHERE org_id = ? AND updated_at < ?"
            conversations = conn.execute(f"SELECT count(*) FROM ({old})", (org_id, cutoff)).fetchone()[0]
            messages = conn.execute(
                f"SELECT count(*) FROM messages WHERE conversation_id IN ({old})", (org_id, cutoff)
            ).fetchone()[0]
            gaps_where = (
                f"org_id = ? AND (created_at < ? OR message_id IN (SELECT id FROM messages WHERE conversation_id IN ({old})))"
            )
            gaps = conn.execute(f"SELECT count(*) FROM knowledge_gaps WHERE {gaps_where}",
                                (org_id, cutoff, org_id, cutoff)).fetchone()[0]  # fmt: skip
            result = Purged(org_id, cutoff, int(conversations), int(messages), int(gaps))
            if dry_run or not (conversations or messages or gaps):
                out.append(result)
                continue
            conn.execute(f"DELETE FROM knowledge_gaps WHERE {gaps_where}", (org_id, cutoff, org_id, cutoff))
            conn.execute(f"DELETE FROM escalation_decisions WHERE conversation_id IN ({old})", (org_id, cutoff))
            # Webhook payloads quote messages: those of purged conversations go, and any older than the cutoff.
            conn.execute(f"DELETE FROM webhook_deliveries WHERE org_id = ? AND (conversation_id IN ({old})"
                         " OR created_at < ?)", (org_id, org_id, cutoff, cutoff))  # fmt: skip
            conn.execute(f"DELETE FROM answer_reviews WHERE message_id IN (SELECT id FROM messages"
                         f" WHERE conversation_id IN ({old}))", (org_id, cutoff))  # fmt: skip
            conn.execute(f"DELETE FROM conversation_notes WHERE conversation_id IN ({old})", (org_id, cutoff))
            conn.execute(f"DELETE FROM conversation_reads WHERE conversation_id IN ({old})", (org_id, cutoff))
            conn.execute(f"DELETE FROM messages WHERE conversation_id IN ({old})", (org_id, cutoff))
            conn.execute("DELETE FROM conversations WHERE org_id = ? AND updated_at < ?", (org_id, cutoff))
            # A customer with no conversation left and no contact since the cutoff is purged too.
            conn.execute("DELETE FROM customers WHERE org_id = ? AND coalesce(last_contact_at, created_at) < ?"
                         " AND NOT EXISTS (SELECT 1 FROM conversations c WHERE c.customer_id = customers.id)",
                         (org_id, cutoff))  # fmt: skip
            audit.record(conn, Context(ctx.actor, org_id, ctx.client_addr),
                         RetentionPurged("conversations", cutoff, result.conversations, result.messages,
                                         result.knowledge_gaps))  # fmt: skip
            out.append(result)
    return out
