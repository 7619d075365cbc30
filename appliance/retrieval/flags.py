"""Passages held for review: the injection scanner's flags and the editors' decisions on them.

The indexer scans every passage of a published article before it enters the index. A flagged passage is kept out
of the lexical and the dense index (it can never be retrieved, so never quoted to a customer) and recorded here as
pending. An editor approves it (the article is queued for the index, and the passage goes in on the next run) or
rejects it (it stays out). A decision belongs to the passage's text (its SHA-256): it holds for every later version
in which that text appears unchanged, and an edited passage is scanned afresh. Every flag and every decision is
audited.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from appliance import audit
from appliance.audit.events import Context, PassageFlagged, PassageFlagReviewed
from appliance.errors import Conflict, InvalidValue, NotFound
from appliance.knowledge.chunking import chunk_article
from appliance.store import Connection, Database, now_iso

Status = Literal["pending", "approved", "rejected"]
STATUSES: tuple[Status, ...] = ("pending", "approved", "rejected")
SYSTEM = "system"  # the actor of flags the indexer raises


@dataclass(frozen=True)
class PassageFlag:
    id: int
    org_id: int
    article_id: int
    title: str  # the article's title in the flagged version
    version: int
    chunk_index: int
    text_sha256: str
    sentence: str
    score: float
    reason: str
    scanner: str
    status: str
    reviewed_by: str | None
    reviewed_at: str | None
    created_at: str


@dataclass(frozen=True)
class NewFlag:
    """What the indexer found in one passage."""

    chunk_index: int
    text_sha256: str
    sentence: str
    score: float
    reason: str


def passage_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def decisions(conn: Connection, org_id: int, article_id: int) -> dict[str, str]:
    """text SHA-256 -> status, for every flag of the article."""
    rows = conn.execute(
        "SELECT text_sha256, status FROM passage_flags WHERE org_id = ? AND article_id = ?", (org_id, article_id)
    ).fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


def record_flags(
    conn: Connection, org_id: int, article_id: int, version: int, found: list[NewFlag], present: dict[str, int],
    scanner: str,
) -> list[int]:  # fmt: skip
    """Inside the indexer's write transaction: add the new flags (audited), point pending flags at where their
    passage now is, and withdraw pending flags whose passage is no longer in the published version (nothing is left
    to review). `present`: text SHA-256 -> chunk index of every passage of the version being indexed."""
    ctx = Context(SYSTEM, org_id)
    added = []
    for flag in found:
        cur = conn.execute(
            "INSERT INTO passage_flags (org_id, article_id, version, chunk_index, text_sha256, sentence, score, reason,"
            " scanner, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (org_id, article_id, version, flag.chunk_index, flag.text_sha256, flag.sentence, flag.score, flag.reason,
             scanner, now_iso()),
        )  # fmt: skip
        if cur.rowcount:
            flag_id = int(cur.lastrowid or 0)
            added.append(flag_id)
            audit.record(conn, ctx, PassageFlagged(flag_id, article_id, version, flag.chunk_index, flag.score,
                                                   flag.reason, scanner))  # fmt: skip
    pending = conn.execute(
        "SELECT id, text_sha256 FROM passage_flags WHERE org_id = ? AND article_id = ? AND status = 'pending'",
        (org_id, article_id),
    ).fetchall()
    for row in pending:
        where = present.get(str(row["text_sha256"]))
        if where is None:
            conn.execute("DELETE FROM passage_flags WHERE id = ?", (row["id"],))
        else:
            conn.execute(
                "UPDATE passage_flags SET version = ?, chunk_index = ? WHERE id = ?", (version, where, row["id"])
            )
    return added


def held_spans(db: Database, org_id: int, article_id: int, content: str, max_words: int) -> list[tuple[int, int]]:
    """Character spans of an article version's content whose passage is held out of the index (a pending or
    rejected flag), chunked as the indexer chunks (max_words: its CHUNK_WORDS). Code that quotes from the whole
    article rather than from retrieved passages must leave these spans out too."""
    with db.read() as conn:
        held = {
            str(r[0]) for r in conn.execute(
                "SELECT text_sha256 FROM passage_flags WHERE org_id = ? AND article_id = ? AND status != 'approved'",
                (org_id, article_id),
            )
        }  # fmt: skip
    if not held:
        return []
    return [(c.start, c.end) for c in chunk_article(content, max_words) if passage_sha256(c.text) in held]


_SELECT = (
    "SELECT f.*, coalesce(v.title, '') AS title FROM passage_flags f"
    " LEFT JOIN article_versions v ON v.article_id = f.article_id AND v.version = f.version"
)


def _flag(row: Any) -> PassageFlag:
    return PassageFlag(
        int(row["id"]), int(row["org_id"]), int(row["article_id"]), str(row["title"]), int(row["version"]),
        int(row["chunk_index"]), row["text_sha256"], row["sentence"], float(row["score"]), row["reason"],
        row["scanner"], row["status"], row["reviewed_by"], row["reviewed_at"], row["created_at"],
    )  # fmt: skip


def list_flags(db: Database, org_id: int, status: str | None = "pending", limit: int = 200) -> list[PassageFlag]:
    """The organisation's flags, oldest first (all statuses when status is None)."""
    if status is not None and status not in STATUSES:
        raise InvalidValue(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    where, params = "f.org_id = ?", [org_id]
    if status is not None:
        where += " AND f.status = ?"
        params.append(status)  # type: ignore[arg-type]
    with db.read() as conn:
        rows = conn.execute(f"{_SELECT} WHERE {where} ORDER BY f.id LIMIT ?", (*params, limit)).fetchall()
    return [_flag(r) for r in rows]


def get_flag(db: Database, org_id: int, flag_id: int) -> PassageFlag:
    with db.read() as conn:
        row = conn.execute(f"{_SELECT} WHERE f.org_id = ? AND f.id = ?", (org_id, flag_id)).fetchone()
    if row is None:
        raise NotFound(f"passage flag {flag_id} not found")
    return _flag(row)


def review_flag(db: Database, ctx: Context, org_id: int, flag_id: int, decision: Status) -> PassageFlag:
    """Approve or reject a flag (an earlier decision may be reversed). The article is queued for the index in the
    same transaction, so the passage enters (approved) or leaves (rejected) it on the next index run."""
    if decision not in ("approved", "rejected"):
        raise InvalidValue("a decision is approved or rejected")
    with db.write() as conn:
        row = conn.execute(
            "SELECT id, article_id, version, status FROM passage_flags WHERE org_id = ? AND id = ?", (org_id, flag_id)
        ).fetchone()
        if row is None:
            raise NotFound(f"passage flag {flag_id} not found")
        if row["status"] == decision:
            raise Conflict(f"passage flag {flag_id} is already {decision}")
        conn.execute(
            "UPDATE passage_flags SET status = ?, reviewed_by = ?, reviewed_at = ? WHERE id = ?",
            (decision, ctx.actor, now_iso(), flag_id),
        )
        audit.record(conn, ctx, PassageFlagReviewed(flag_id, int(row["article_id"]), int(row["version"]), decision,
                                                    str(row["status"])))  # fmt: skip
        conn.execute(
            "INSERT INTO index_outbox (org_id, article_id, queued_at) VALUES (?, ?, ?)",
            (org_id, int(row["article_id"]), now_iso()),
        )
    return get_flag(db, org_id, flag_id)
