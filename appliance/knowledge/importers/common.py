"""What every importer shares: one article per transaction, a dry run that reports without writing, and
re-imports that are idempotent (same external id: changed content makes a new version, unchanged is skipped)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from appliance import audit
from appliance.audit.events import ArticlesImported, Context
from appliance.errors import ApplianceError
from appliance.knowledge import articles
from appliance.store import Database

Outcome = Literal["created", "updated", "unchanged", "failed"]
MAX_FILE_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class Incoming:
    """One article parsed from an export, or the reason it could not be."""

    source: str  # file (and entry) it came from, for the report
    external_id: str = ""
    draft: articles.Draft | None = None
    publish: bool = True
    error: str | None = None


@dataclass(frozen=True)
class ImportItem:
    source: str
    outcome: Outcome
    article_id: int | None = None
    reason: str = ""


@dataclass
class ImportReport:
    dry_run: bool
    items: list[ImportItem] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        found = Counter(item.outcome for item in self.items)
        return {k: found.get(k, 0) for k in ("created", "updated", "unchanged", "failed")}


def _existing(db: Database, org_id: int, external_id: str) -> articles.Article | None:
    with db.read() as conn:
        row = conn.execute(
            "SELECT id FROM articles WHERE org_id = ? AND external_id = ?", (org_id, external_id)
        ).fetchone()
    return None if row is None else articles.get_article(db, org_id, row["id"])


def _same(article: articles.Article, draft: articles.Draft) -> bool:
    latest = article.latest
    return (latest.title, latest.content, latest.category, tuple(latest.tags)) == (
        draft.title, draft.content, draft.category, draft.tags,
    )  # fmt: skip


def apply(
    db: Database, ctx: Context, org_id: int, incoming: Iterable[Incoming], dry_run: bool,
    progress: Callable[[int], None] | None = None, source: str | None = None,
) -> ImportReport:  # fmt: skip
    """source names the run in the audit trail: one article.imported event with the counts (a dry run writes
    nothing, so records nothing)."""
    report = ImportReport(dry_run)
    for item in incoming:
        report.items.append(_apply_one(db, ctx, org_id, item, dry_run))
        if progress is not None:
            progress(1)
    if source is not None and not dry_run:
        n = report.counts
        event = ArticlesImported(source[:200], n["created"], n["updated"], n["unchanged"], n["failed"])
        audit.record_alone(db, ctx, event)
    return report


def _apply_one(db: Database, ctx: Context, org_id: int, item: Incoming, dry_run: bool) -> ImportItem:
    if item.error is not None or item.draft is None:
        return ImportItem(item.source, "failed", reason=item.error or "nothing to import")
    try:
        draft = item.draft.validated()
        existing = _existing(db, org_id, item.external_id)
        if existing is not None and _same(existing, draft):
            published = existing.status == "published" and not existing.has_unpublished_changes
            if published == item.publish or not item.publish:
                return ImportItem(item.source, "unchanged", existing.id)
        if dry_run:
            if existing is None:
                return ImportItem(item.source, "created")
            return ImportItem(item.source, "updated", existing.id)
        # One transaction per article: the version and its publication land together or not at all.
        with db.write():
            if existing is None:
                article = articles.create_article(db, ctx, org_id, draft, item.external_id)
                outcome: Outcome = "created"
            else:
                article = existing
                if not _same(existing, draft):
                    article = articles.update_article(db, ctx, org_id, existing.id, draft, note="imported")
                outcome = "updated"
            if item.publish and (article.status != "published" or article.has_unpublished_changes):
                article = articles.set_status(db, ctx, org_id, article.id, "published")
        return ImportItem(item.source, outcome, article.id)
    except ApplianceError as exc:
        return ImportItem(item.source, "failed", reason=exc.message)
