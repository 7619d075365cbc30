"""The organisation's emergency guidance, given at once when a message may describe an emergency (`urgent`).

By default the guidance is a passage of the organisation's emergencies article, cited as the answer's source: the
article the organisation names in its `emergency_article_id` setting, else its published article whose title, tags
or category say emergency. Of that article's indexed passages, the one that tells people whom to call (a heading
or a line such as "Call 911 (or your local emergency number)") is quoted; else its first. With no such article, a
built-in sentence tells the person to call their local emergency number now.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from appliance.answering.types import Source
from appliance.knowledge.chunking import chunk_article
from appliance.store import Connection, Database

_EMERGENCY = re.compile(r"emergenc", re.IGNORECASE)
_CALL = re.compile(r"\b(?:call|dial|ring|phone)\b[^\n]{0,60}?(?:\b(?:911|999|112|000|111)\b|emergency)"
                   r"|emergency (?:number|services)", re.IGNORECASE)  # fmt: skip


@dataclass(frozen=True)
class Guidance:
    article_id: int
    version: int
    title: str
    chunk_id: int  # 0 when the article is not indexed yet (the passage is cut from its content the same way)
    start: int
    end: int
    passage: str  # content[start:end], what the source cites
    text: str  # the passage as the answer shows it, under its heading


def _published(conn: Connection, org_id: int, article_id: int) -> tuple[int, str, str] | None:
    row = conn.execute(
        "SELECT v.version, v.title, v.content FROM articles a JOIN article_versions v ON v.article_id = a.id"
        " AND v.version = a.published_version WHERE a.org_id = ? AND a.id = ? AND a.status = 'published'",
        (org_id, article_id),
    ).fetchone()  # fmt: skip
    return None if row is None else (int(row["version"]), str(row["title"]), str(row["content"]))


def find_article(conn: Connection, org_id: int, wanted: int | None) -> int | None:
    """The emergencies article: the one the setting names (when it is published), else the first published one
    whose title, then tags, then category mention emergencies."""
    if wanted is not None and _published(conn, org_id, wanted) is not None:
        return wanted
    rows = conn.execute(
        "SELECT a.id, v.title, v.tags, v.category FROM articles a JOIN article_versions v ON v.article_id = a.id"
        " AND v.version = a.published_version WHERE a.org_id = ? AND a.status = 'published' ORDER BY a.id",
        (org_id,),
    ).fetchall()  # fmt: skip
    for field in ("title", "tags", "category"):
        for row in rows:
            value = " ".join(json.loads(row["tags"])) if field == "tags" else str(row[field])
            if _EMERGENCY.search(value):
                return int(row["id"])
    return None


def guidance(db: Database, org_id: int, wanted: int | None) -> Guidance | None:
    with db.read() as conn:
        article_id = find_article(conn, org_id, wanted)
        if article_id is None:
            return None
        found = _published(conn, org_id, article_id)
        assert found is not None
        version, title, content = found
        chunks = [(int(r["id"]), int(r["start_offset"]), int(r["end_offset"]), str(r["heading_path"]))
                  for r in conn.execute("SELECT id, start_offset, end_offset, heading_path FROM chunks WHERE org_id = ?"
                                        " AND article_id = ? AND version = ? ORDER BY chunk_index",
                                        (org_id, article_id, version))]  # fmt: skip
    if not chunks:  # published but not indexed yet: the same passages, cut now
        chunks = [(0, c.start, c.end, json.dumps(list(c.heading_path))) for c in chunk_article(content)]
    if not chunks:
        return None
    pick = next((c for c in chunks if _CALL.search(" ".join(json.loads(c[3]))) or _CALL.search(content[c[1]:c[2]])),
                chunks[0])  # fmt: skip
    chunk_id, start, end, path = pick
    # A long section is indexed as several passages: the guidance is the whole section, from the picked passage on.
    for other in chunks[chunks.index(pick) + 1:]:
        if other[3] != path:
            break
        end = other[2]
    heading = json.loads(path)
    passage = content[start:end]
    text = passage.strip()
    if heading and heading[-1] not in text:
        text = f"**{heading[-1]}**\n\n{text}"  # the heading says what the list is for ("Call 911 … for:")
    return Guidance(article_id, version, title, chunk_id, start, end, passage, text)


def source(found: Guidance, help_url: Callable[[int, int], str], org_id: int) -> Source:
    return Source(1, found.article_id, found.version, found.title, help_url(org_id, found.article_id), found.chunk_id,
                  found.start, found.end, found.passage)  # fmt: skip
