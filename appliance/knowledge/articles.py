"""Articles and their versions.

Every save (create, edit, restore) writes a new immutable version; nothing is overwritten. Publishing points the
article's `published_version` at its latest version: customers and the answer engine see only that version, so an
edit to a published article stays a pending draft until it is published. Archiving withdraws the article
entirely. Every change is audited.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from appliance import audit
from appliance.audit.events import ArticleSaved, ArticleStatusChanged, Context
from appliance.errors import Conflict, InvalidValue, NotFound
from appliance.store import Connection, Database, now_iso, unique_violation

Status = Literal["draft", "published", "archived"]
STATUSES: tuple[Status, ...] = ("draft", "published", "archived")
MAX_TITLE = 300
MAX_CONTENT = 500_000
MAX_TAGS = 30


@dataclass(frozen=True)
class ArticleVersion:
    article_id: int
    version: int
    title: str
    content: str
    category: str
    tags: list[str]
    status: str
    author: str
    note: str
    content_sha256: str
    created_at: str


@dataclass(frozen=True)
class Article:
    id: int
    org_id: int
    external_id: str | None
    status: str
    current_version: int
    published_version: int | None
    views: int
    helpful: int
    created_at: str
    updated_at: str
    latest: ArticleVersion

    @property
    def has_unpublished_changes(self) -> bool:
        return self.status == "published" and self.published_version != self.current_version


@dataclass(frozen=True)
class Draft:
    title: str
    content: str
    category: str = ""
    tags: tuple[str, ...] = ()

    def validated(self) -> Draft:
        title = self.title.strip()
        if not title or len(title) > MAX_TITLE:
            raise InvalidValue(f"title must be 1-{MAX_TITLE} characters")
        if len(self.content) > MAX_CONTENT:
            raise InvalidValue(f"content must be at most {MAX_CONTENT} characters")
        tags = tuple(dict.fromkeys(t.strip().lower() for t in self.tags if t.strip()))
        if len(tags) > MAX_TAGS or any(len(t) > 64 for t in tags):
            raise InvalidValue(f"at most {MAX_TAGS} tags of at most 64 characters")
        if len(self.category) > 120:
            raise InvalidValue("category must be at most 120 characters")
        return Draft(title, self.content, self.category.strip(), tags)


def _version(row: Any) -> ArticleVersion:
    return ArticleVersion(
        row["article_id"], row["version"], row["title"], row["content"], row["category"], json.loads(row["tags"]),
        row["status"], row["author"], row["note"], row["content_sha256"], row["created_at"],
    )  # fmt: skip


def _insert_version(conn: Connection, org_id: int, article_id: int, version: int, draft: Draft, status: str,
                    author: str, note: str) -> None:  # fmt: skip
    conn.execute(
        "INSERT INTO article_versions (article_id, version, org_id, title, content, category, tags, status, author,"
        " note, content_sha256, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            article_id, version, org_id, draft.title, draft.content, draft.category, json.dumps(list(draft.tags)),
            status, author, note, hashlib.sha256(draft.content.encode("utf-8")).hexdigest(), now_iso(),
        ),
    )  # fmt: skip


def _queue_for_index(conn: Connection, org_id: int, article_id: int) -> None:
    """Every change is queued for the retrieval index in its own transaction; the indexer works out what changed."""
    conn.execute(
        "INSERT INTO index_outbox (org_id, article_id, queued_at) VALUES (?, ?, ?)", (org_id, article_id, now_iso())
    )


def create_article(
    db: Database, ctx: Context, org_id: int, draft: Draft, external_id: str | None = None
) -> Article:
    draft = draft.validated()
    now = now_iso()
    try:
        with db.write() as conn:
            cur = conn.execute(
                "INSERT INTO articles (org_id, external_id, current_version, status, created_at, updated_at)"
                " VALUES (?, ?, 1, 'draft', ?, ?)",
                (org_id, external_id, now, now),
            )
            article_id = int(cur.lastrowid or 0)
            _insert_version(conn, org_id, article_id, 1, draft, "draft", ctx.actor, "created")
            audit.record(conn, ctx, ArticleSaved(article_id, 1, draft.title, "created"))
            _queue_for_index(conn, org_id, article_id)
    except Exception as exc:
        if unique_violation(exc):
            raise Conflict(f"an article with external id {external_id!r} already exists") from None
        raise
    return get_article(db, org_id, article_id)


def _locked(conn: Connection, org_id: int, article_id: int) -> Any:
    row = conn.execute("SELECT * FROM articles WHERE org_id = ? AND id = ?", (org_id, article_id)).fetchone()
    if row is None:
        raise NotFound(f"article {article_id} not found")
    return row


def update_article(
    db: Database, ctx: Context, org_id: int, article_id: int, draft: Draft, note: str = "edited",
    expected_version: int | None = None,
) -> Article:  # fmt: skip
    """Save a new version. expected_version guards against overwriting someone else's newer save (409)."""
    draft = draft.validated()
    with db.write() as conn:
        row = _locked(conn, org_id, article_id)
        if expected_version is not None and row["current_version"] != expected_version:
            raise Conflict(
                f"article {article_id} is at version {row['current_version']}, not {expected_version}: reload it"
            )
        version = row["current_version"] + 1
        status = "draft" if row["status"] == "published" else row["status"]  # pending until published
        _insert_version(conn, org_id, article_id, version, draft, status, ctx.actor, note[:200])
        conn.execute(
            "UPDATE articles SET current_version = ?, updated_at = ? WHERE id = ?", (version, now_iso(), article_id)
        )
        audit.record(conn, ctx, ArticleSaved(article_id, version, draft.title, note[:200]))
        _queue_for_index(conn, org_id, article_id)
    return get_article(db, org_id, article_id)


def set_status(db: Database, ctx: Context, org_id: int, article_id: int, status: str) -> Article:
    """publish: serve the latest version; archive: serve nothing; draft: withdraw but keep editing."""
    if status not in STATUSES:
        raise InvalidValue(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    with db.write() as conn:
        row = _locked(conn, org_id, article_id)
        published = row["current_version"] if status == "published" else None
        if status == row["status"] and published == row["published_version"]:
            raise Conflict(f"article {article_id} is already {status}")
        conn.execute(
            "UPDATE articles SET status = ?, published_version = ?, updated_at = ? WHERE id = ?",
            (status, published, now_iso(), article_id),
        )
        audit.record(conn, ctx, ArticleStatusChanged(article_id, row["status"], status, row["current_version"]))
        _queue_for_index(conn, org_id, article_id)
    return get_article(db, org_id, article_id)


def restore_version(db: Database, ctx: Context, org_id: int, article_id: int, version: int) -> Article:
    old = get_version(db, org_id, article_id, version)
    draft = Draft(old.title, old.content, old.category, tuple(old.tags))
    return update_article(db, ctx, org_id, article_id, draft, note=f"restored version {version}")


def get_article(db: Database, org_id: int, article_id: int) -> Article:
    with db.read() as conn:
        row = _locked(conn, org_id, article_id)
        latest = conn.execute(
            "SELECT * FROM article_versions WHERE article_id = ? AND version = ?", (article_id, row["current_version"])
        ).fetchone()
    return _article(row, latest)


def _article(row: Any, latest: Any) -> Article:
    return Article(
        row["id"], row["org_id"], row["external_id"], row["status"], row["current_version"],
        row["published_version"], row["views"], row["helpful"], row["created_at"], row["updated_at"], _version(latest),
    )  # fmt: skip


def get_version(db: Database, org_id: int, article_id: int, version: int) -> ArticleVersion:
    with db.read() as conn:
        row = conn.execute(
            "SELECT * FROM article_versions WHERE org_id = ? AND article_id = ? AND version = ?",
            (org_id, article_id, version),
        ).fetchone()
    if row is None:
        raise NotFound(f"article {article_id} has no version {version}")
    return _version(row)


def list_versions(db: Database, org_id: int, article_id: int) -> list[ArticleVersion]:
    with db.read() as conn:
        _locked(conn, org_id, article_id)
        rows = conn.execute(
            "SELECT * FROM article_versions WHERE org_id = ? AND article_id = ? ORDER BY version DESC",
            (org_id, article_id),
        ).fetchall()
    return [_version(r) for r in rows]


def diff_versions(db: Database, org_id: int, article_id: int, old: int, new: int) -> dict[str, Any]:
    """Side by side: rows of (left line, right line, kind) with kind equal / changed / added / removed."""
    a, b = get_version(db, org_id, article_id, old), get_version(db, org_id, article_id, new)
    left, right = a.content.splitlines(), b.content.splitlines()
    rows: list[dict[str, Any]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=left, b=right, autojunk=False).get_opcodes():
        if tag == "equal":
            rows.extend({"kind": "equal", "left": left[i], "right": right[j1 + k]} for k, i in enumerate(range(i1, i2)))
            continue
        span = max(i2 - i1, j2 - j1)
        for k in range(span):
            lhs = left[i1 + k] if i1 + k < i2 else None
            rhs = right[j1 + k] if j1 + k < j2 else None
            kind = "changed" if lhs is not None and rhs is not None else ("removed" if rhs is None else "added")
            rows.append({"kind": kind, "left": lhs, "right": rhs})
    return {
        "article_id": article_id, "old": old, "new": new,
        "title": {"left": a.title, "right": b.title}, "rows": rows,
    }  # fmt: skip


@dataclass(frozen=True)
class Page:
    items: list[Article]
    total: int
    page: int
    per_page: int


def list_articles(
    db: Database, org_id: int, query: str | None = None, category: str | None = None, tag: str | None = None,
    status: str | None = None, page: int = 1, per_page: int = 50,
) -> Page:  # fmt: skip
    if status is not None and status not in STATUSES:
        raise InvalidValue(f"unknown status {status!r}")
    clauses: list[str] = ["a.org_id = ?"]
    params: list[Any] = [org_id]
    if status:
        clauses.append("a.status = ?")
        params.append(status)
    if category:
        clauses.append("v.category = ?")
        params.append(category)
    if tag:
        clauses.append("EXISTS (SELECT 1 FROM json_each(v.tags) WHERE json_each.value = ?)")
        params.append(tag.lower())
    if query:
        clauses.append("(v.title LIKE ? ESCAPE '\\' OR v.content LIKE ? ESCAPE '\\')")
        like = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        params.extend([like, like])
    where = " AND ".join(clauses)
    joined = "FROM articles a JOIN article_versions v ON v.article_id = a.id AND v.version = a.current_version"
    with db.read() as conn:
        total = conn.execute(f"SELECT count(*) {joined} WHERE {where}", params).fetchone()[0]
        rows = conn.execute(
            f"SELECT a.* {joined} WHERE {where} ORDER BY a.updated_at DESC, a.id DESC LIMIT ? OFFSET ?",
            (*params, per_page, (page - 1) * per_page),
        ).fetchall()
        items = [
            _article(row, conn.execute(
                "SELECT * FROM article_versions WHERE article_id = ? AND version = ?", (row["id"], row["current_version"])
            ).fetchone())
            for row in rows
        ]  # fmt: skip
    return Page(items, int(total), page, per_page)


def published_version(db: Database, org_id: int, article_id: int) -> ArticleVersion:
    """What customers and the answer engine may see: the published version of a published article, or 404."""
    with db.read() as conn:
        row = conn.execute(
            "SELECT published_version FROM articles WHERE org_id = ? AND id = ? AND status = 'published'",
            (org_id, article_id),
        ).fetchone()
    if row is None or row["published_version"] is None:
        raise NotFound(f"article {article_id} not found")
    return get_version(db, org_id, article_id, row["published_version"])


def count_view(db: Database, org_id: int, article_id: int) -> None:
    """One more view of the article's help-centre page (a count only: nothing about who viewed it)."""
    with db.write() as conn:
        conn.execute("UPDATE articles SET views = views + 1 WHERE org_id = ? AND id = ?", (org_id, article_id))


def list_published(db: Database, org_id: int) -> list[ArticleVersion]:
    with db.read() as conn:
        rows = conn.execute(
            "SELECT v.* FROM articles a JOIN article_versions v ON v.article_id = a.id AND v.version = a.published_version"
            " WHERE a.org_id = ? AND a.status = 'published' ORDER BY v.title",
            (org_id,),
        ).fetchall()
    return [_version(r) for r in rows]


def facets(db: Database, org_id: int) -> tuple[list[str], list[str]]:
    """The categories and tags the organisation's articles use (latest versions), for filters and suggestions."""
    joined = "FROM articles a JOIN article_versions v ON v.article_id = a.id AND v.version = a.current_version"
    with db.read() as conn:
        categories = conn.execute(
            f"SELECT DISTINCT v.category {joined} WHERE a.org_id = ? AND v.category != '' ORDER BY 1", (org_id,)
        ).fetchall()
        tags = conn.execute(
            f"SELECT DISTINCT t.value {joined}, json_each(v.tags) t WHERE a.org_id = ? ORDER BY 1", (org_id,)
        ).fetchall()
    return [str(r[0]) for r in categories], [str(r[0]) for r in tags]


def count_helpful(conn: Connection, org_id: int, article_ids: set[int], change: int) -> None:
    """A customer's thumbs-up on an answer citing these articles (change 1), or taken back (-1). The count is not a
    change of the article: its updated_at, versions and index stay as they are."""
    for article_id in sorted(article_ids):
        conn.execute("UPDATE articles SET helpful = max(0, helpful + ?) WHERE org_id = ? AND id = ?",
                     (change, org_id, article_id))  # fmt: skip
