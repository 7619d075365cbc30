"""How one article is used: views of its help-centre page (a count kept on the article, nothing about who), and from
the stored AI answers how many cited it, how many of those the customer marked helpful (thumbs up) or not (thumbs
down), and the latest thumbs-down answers.

The answer figures cover the messages retention has kept (conversation_retention_days); the view count covers the
article's whole life.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.store import Database

# An answer cites an article when one of its stored sources names it (messages.sources: a JSON list of sources).
_CITING = (
    "FROM messages m WHERE m.org_id = ? AND m.role = 'ai' AND EXISTS (SELECT 1 FROM json_each(m.sources) s"
    " WHERE json_extract(s.value, '$.article_id') = ?)"
)
EXCERPT_CHARS = 200


@dataclass(frozen=True)
class DisputedAnswer:
    message_id: int
    conversation_id: int
    created_at: str
    excerpt: str  # the answer's own text (the assistant's words, quoted from articles), never the customer's


@dataclass(frozen=True)
class ArticleUsage:
    views: int  # help-centre page views
    citations: int
    helpful: int
    not_helpful: int
    disputed: list[DisputedAnswer]  # newest first


def article_usage(db: Database, org_id: int, article_id: int, limit: int = 10) -> ArticleUsage:
    with db.read() as conn:
        viewed = conn.execute("SELECT views FROM articles WHERE org_id = ? AND id = ?", (org_id, article_id)).fetchone()
        row = conn.execute(
            "SELECT count(*), coalesce(sum(m.feedback = 'up'), 0), coalesce(sum(m.feedback = 'down'), 0) " + _CITING,
            (org_id, article_id),
        ).fetchone()
        down = conn.execute(
            "SELECT m.id, m.conversation_id, m.created_at, m.content " + _CITING
            + " AND m.feedback = 'down' ORDER BY m.id DESC LIMIT ?", (org_id, article_id, limit),
        ).fetchall()  # fmt: skip
    disputed = [DisputedAnswer(int(r[0]), int(r[1]), str(r[2]), _excerpt(str(r[3]))) for r in down]
    return ArticleUsage(int(viewed[0]) if viewed else 0, int(row[0]), int(row[1]), int(row[2]), disputed)


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= EXCERPT_CHARS else flat[: EXCERPT_CHARS - 1] + "…"
