"""Reviewers' labels on AI replies: was this the right reply? The labels give the dashboard its accuracy figures and
the site the data to recalibrate confidence on (the export). A reply is any answer the engine produced (answered,
refused or blocked): a refusal that should have been a refusal is correct. One label per reply; a new one replaces
the old. Setting and clearing a label are audited, and so are listing replies for review and exporting labels,
because both carry customers' questions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from appliance import audit
from appliance.analytics.definitions import ANSWER_OUTCOMES, band_bounds, confidence_band, day_bounds
from appliance.analytics.rollup import mark_stale
from appliance.audit.events import AnswerReviewCleared, AnswerReviewed, Context, ReviewsExported, ReviewsRead
from appliance.errors import InvalidValue, NotFound
from appliance.store import Connection, Database, now_iso

VERDICTS = ("correct", "incorrect")
MAX_REASON_CHARS = 1000
MAX_LIST = 500

# The customer's message a reply answered: the last one before it in the conversation.
QUESTION_SQL = (
    "(SELECT q.content FROM messages q WHERE q.conversation_id = m.conversation_id AND q.role = 'customer'"
    " AND q.id < m.id ORDER BY q.id DESC LIMIT 1)"
)  # fmt: skip
REVIEWER_SQL = "(SELECT coalesce(nullif(u.name, ''), u.email) FROM users u WHERE u.id = r.reviewer_id)"


@dataclass(frozen=True)
class Review:
    message_id: int
    verdict: str
    reason: str | None
    reviewer_id: int
    reviewer: str | None
    created_at: str


@dataclass(frozen=True)
class ReviewFilter:
    """unreviewed: only replies with no label; verdict: only replies with this label. Dates are the replies' UTC
    days, both included. before: a message id, for the next page (newest first)."""

    unreviewed: bool = False
    verdict: str | None = None
    outcome: str | None = None
    band: str | None = None
    since: date | None = None
    until: date | None = None
    limit: int = 100
    before: int | None = None

    def public(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in self.__dict__.items() if v is not None}


def _reply(conn: Connection, org_id: int, message_id: int) -> Any:
    """The AI reply; another organisation's message is not found, a message that is not a reply is refused."""
    row = conn.execute("SELECT * FROM messages WHERE id = ? AND org_id = ?", (message_id, org_id)).fetchone()
    if row is None:
        raise NotFound(f"message {message_id} not found")
    if row["role"] != "ai" or row["outcome"] not in ANSWER_OUTCOMES:
        raise InvalidValue(f"message {message_id} is not an AI answer; only the assistant's answers are reviewed")
    return row


def _review(conn: Connection, message_id: int) -> Review | None:
    row = conn.execute(f"SELECT r.*, {REVIEWER_SQL} AS reviewer FROM answer_reviews r WHERE r.message_id = ?",
                       (message_id,)).fetchone()  # fmt: skip
    if row is None:
        return None
    return Review(int(row["message_id"]), row["verdict"], row["reason"], int(row["reviewer_id"]), row["reviewer"],
                  row["created_at"])  # fmt: skip


def _checked_reason(verdict: str, reason: str | None) -> str | None:
    if verdict not in VERDICTS:
        raise InvalidValue(f"verdict must be one of {', '.join(VERDICTS)}")
    reason = (reason or "").strip() or None
    if verdict == "incorrect" and reason is None:
        raise InvalidValue("an incorrect verdict needs a reason")
    if reason is not None and len(reason) > MAX_REASON_CHARS:
        raise InvalidValue(f"the reason is {len(reason)} characters; at most {MAX_REASON_CHARS}")
    return reason


def set_review(db: Database, ctx: Context, org_id: int, message_id: int, reviewer_id: int, verdict: str,
               reason: str | None) -> Review:  # fmt: skip
    """Label a reply (replacing any earlier label). The reply's day is recomputed by the next rollup."""
    reason = _checked_reason(verdict, reason)
    now = now_iso()
    with db.write() as conn:
        reply = _reply(conn, org_id, message_id)
        previous = _review(conn, message_id)
        conn.execute(
            "INSERT INTO answer_reviews (org_id, message_id, reviewer_id, verdict, reason, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO UPDATE SET reviewer_id = excluded.reviewer_id,"
            " verdict = excluded.verdict, reason = excluded.reason, created_at = excluded.created_at",
            (org_id, message_id, reviewer_id, verdict, reason, now),
        )  # fmt: skip
        audit.record(conn, ctx, AnswerReviewed(message_id, verdict, previous.verdict if previous else None))
        mark_stale(conn, org_id, reply["created_at"][:10], now)
        review = _review(conn, message_id)
    assert review is not None
    return review


def clear_review(db: Database, ctx: Context, org_id: int, message_id: int) -> None:
    now = now_iso()
    with db.write() as conn:
        reply = _reply(conn, org_id, message_id)
        previous = _review(conn, message_id)
        if previous is None:
            raise NotFound(f"message {message_id} has no review")
        conn.execute("DELETE FROM answer_reviews WHERE message_id = ?", (message_id,))
        audit.record(conn, ctx, AnswerReviewCleared(message_id, previous.verdict))
        mark_stale(conn, org_id, reply["created_at"][:10], now)


def _where(org_id: int, f: ReviewFilter) -> tuple[str, list[Any]]:
    marks = ", ".join("?" * len(ANSWER_OUTCOMES))
    sql = f"m.org_id = ? AND m.role = 'ai' AND m.outcome IN ({marks})"
    args: list[Any] = [org_id, *ANSWER_OUTCOMES]
    if f.unreviewed and f.verdict is not None:
        raise InvalidValue("unreviewed and verdict cannot be asked for together")
    if f.unreviewed:
        sql += " AND r.id IS NULL"
    if f.verdict is not None:
        if f.verdict not in VERDICTS:
            raise InvalidValue(f"verdict must be one of {', '.join(VERDICTS)}")
        sql, args = sql + " AND r.verdict = ?", [*args, f.verdict]
    if f.outcome is not None:
        if f.outcome not in ANSWER_OUTCOMES:
            raise InvalidValue(f"outcome must be one of {', '.join(ANSWER_OUTCOMES)}")
        sql, args = sql + " AND m.outcome = ?", [*args, f.outcome]
    if f.band is not None:
        lower, upper = band_bounds(f.band)
        sql, args = sql + " AND coalesce(m.confidence, 0) >= ? AND coalesce(m.confidence, 0) < ?", [*args, lower, upper]
    return _dated(sql, args, f.since, f.until, f.before)


def _dated(sql: str, args: list[Any], since: date | None, until: date | None,
           before: int | None = None) -> tuple[str, list[Any]]:  # fmt: skip
    if since is not None and until is not None and since > until:
        raise InvalidValue(f"since ({since}) is after until ({until})")
    if since is not None:
        sql, args = sql + " AND m.created_at >= ?", [*args, day_bounds(since)[0]]
    if until is not None:
        sql, args = sql + " AND m.created_at < ?", [*args, day_bounds(until)[1]]
    if before is not None:
        sql, args = sql + " AND m.id < ?", [*args, before]
    return sql, args


def _item(row: Any) -> dict[str, Any]:
    review = None
    if row["verdict"] is not None:
        review = {"verdict": row["verdict"], "reason": row["reason"], "reviewer_id": row["reviewer_id"],
                  "reviewer": row["reviewer"], "reviewed_at": row["reviewed_at"]}  # fmt: skip
    return {
        "message_id": row["id"], "conversation_id": row["conversation_id"], "created_at": row["created_at"],
        "question": row["question"], "answer": row["content"], "outcome": row["outcome"],
        "confidence": row["confidence"], "band": confidence_band(row["confidence"]), "mode": row["mode"],
        "sources": json.loads(row["sources"]), "review": review,
    }  # fmt: skip


SELECT_REPLIES = (
    f"SELECT m.*, {QUESTION_SQL} AS question, r.verdict, r.reason, r.reviewer_id, r.created_at AS reviewed_at,"
    f" {REVIEWER_SQL} AS reviewer FROM messages m LEFT JOIN answer_reviews r ON r.message_id = m.id"
)  # fmt: skip


def list_replies(db: Database, ctx: Context, org_id: int, f: ReviewFilter) -> list[dict[str, Any]]:
    """AI replies for review with the question each answered, newest first; the read is audited."""
    if not 1 <= f.limit <= MAX_LIST:
        raise InvalidValue(f"limit must be 1..{MAX_LIST}")
    where, args = _where(org_id, f)
    with db.write() as conn:
        rows = conn.execute(f"{SELECT_REPLIES} WHERE {where} ORDER BY m.id DESC LIMIT ?", (*args, f.limit)).fetchall()
        audit.record(conn, ctx, ReviewsRead(f.public(), len(rows)))
    return [_item(r) for r in rows]


def reply_for_review(db: Database, ctx: Context, org_id: int, message_id: int) -> dict[str, Any]:
    """One AI reply as the review list shows it (the console redraws a row once it is labelled); audited as a read."""
    with db.write() as conn:
        _reply(conn, org_id, message_id)
        row = conn.execute(f"{SELECT_REPLIES} WHERE m.id = ? AND m.org_id = ?", (message_id, org_id)).fetchone()
        audit.record(conn, ctx, ReviewsRead({"message_id": message_id}, 1))
    return _item(row)


def _label(row: Any) -> dict[str, Any]:
    provenance = json.loads(row["provenance"]) if row["provenance"] else {}
    return {
        "message_id": row["id"], "conversation_id": row["conversation_id"], "answered_at": row["created_at"],
        "question": row["question"], "query": row["query"], "answer": row["content"], "outcome": row["outcome"],
        "confidence": row["confidence"], "mode": row["mode"], "threshold": provenance.get("threshold"),
        "features": provenance.get("features", {}), "provenance": provenance, "verdict": row["verdict"],
        "correct": 1.0 if row["verdict"] == "correct" else 0.0, "reason": row["reason"],
        "reviewer_id": row["reviewer_id"], "reviewer": row["reviewer"], "reviewed_at": row["reviewed_at"],
    }  # fmt: skip


def export_labels(db: Database, ctx: Context, org_id: int, since: date | None = None,
                  until: date | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Every labelled reply given in the range (the replies' UTC days), oldest first, as rows for JSON Lines:
    the question, the answer, its confidence, mode, features and provenance, and the label. Audited as an export."""
    sql, args = _dated("m.org_id = ? AND r.id IS NOT NULL", [org_id], since, until)
    with db.write() as conn:
        rows = conn.execute(f"{SELECT_REPLIES} WHERE {sql} ORDER BY m.id", args).fetchall()
        audit.record(conn, ctx, ReviewsExported(since.isoformat() if since else None,
                                                until.isoformat() if until else None, len(rows)))  # fmt: skip
    return [_label(r) for r in rows]
