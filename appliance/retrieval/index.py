"""Indexing: what customers may see (the published version of each published article), chunked, in the lexical
index (FTS5) and the dense index (embeddings in the database, FAISS in memory).

Article changes land in `index_outbox` in the same transaction as the change. `process_pending` works through it
article by article: chunk and embed outside any transaction (embeddings of unchanged passages are reused), then
swap the article's chunks in one write transaction that also bumps the organisation's index generation and clears
the outbox rows it covered. A crash before that commit leaves the previous index whole and the outbox rows in
place, so the work is simply done again. Drafts and archived articles have no chunks.

Before a passage enters either index, the injection scanner reads it (appliance.inference.scanner). A flagged
passage is held out of both indexes, and out of the article's whole-text entry, until an editor approves it
(retrieval.flags); passages already indexed unchanged are not scanned again, except by `reindex`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from appliance.inference.base import Embedder
from appliance.inference.scanner import PassageScanner, load_passage_scanner
from appliance.knowledge.chunking import Chunk, chunk_article
from appliance.retrieval import flags, lexical
from appliance.retrieval.dense import DenseIndexes, IndexState, from_blob, read_state, to_blob
from appliance.store import Connection, Database, now_iso

log = logging.getLogger("appliance.retrieval")
Progress = Callable[[int], None]
# Passages of at most 60 words: both legs rank best with them on the dev data (R@1 on supportbench_emanual: 60
# words 0.784, 100 words 0.761, 200 words 0.752 with the same fusion), and a short passage is a precise citation.
CHUNK_WORDS = 60


@dataclass
class IndexRun:
    articles: int = 0
    changed: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    embedded: int = 0
    scanned: int = 0  # passages the injection scanner read
    held: int = 0  # passages kept out of the index: flagged now, or pending or rejected before
    flagged: list[int] = field(default_factory=list)  # ids of the flags raised by this run
    skipped: list[int] = field(default_factory=list)  # articles that changed again while being indexed


@dataclass(frozen=True)
class _Planned:
    chunk: Chunk
    indexed: str
    sha256: str  # of the indexed text (title and headings, then the passage)
    passage_sha256: str  # of the passage alone: what a review decision is about
    context: str  # title and headings, which tell the scanner what the passage is about


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Indexer:
    def __init__(
        self, db: Database, embedder: Embedder | None, dense: DenseIndexes, max_words: int = CHUNK_WORDS,
        scanner: PassageScanner | None = None,
    ) -> None:  # fmt: skip
        """Without an embedder (the model is not installed) articles are indexed for lexical search only, and are
        embedded by the next change or `appliance kb reindex` once the model is in place. The scanner defaults to
        the shipped one, with this embedder when it is the one the scanner was trained with."""
        self.db = db
        self.embedder = embedder
        self.dense = dense
        self.max_words = max_words
        self.scanner = scanner or load_passage_scanner(embedder)

    def pending(self, org_id: int) -> dict[int, int]:
        """article id -> the newest outbox row for it."""
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT article_id, max(id) FROM index_outbox WHERE org_id = ? GROUP BY article_id ORDER BY 2",
                (org_id,),
            ).fetchall()
        return {int(r[0]): int(r[1]) for r in rows}

    def pending_orgs(self) -> list[int]:
        with self.db.read() as conn:
            return [int(r[0]) for r in conn.execute("SELECT DISTINCT org_id FROM index_outbox ORDER BY org_id")]

    def process_pending(self, org_id: int, progress: Progress | None = None) -> IndexRun:
        run = IndexRun()
        for article_id, upto in self.pending(org_id).items():
            self._index_article(org_id, article_id, upto, force=False, run=run)
            if progress is not None:
                progress(1)
        if run.changed:
            self.dense.persist(org_id)
        return run

    def reindex(self, org_id: int, progress: Progress | None = None) -> IndexRun:
        """Rebuild the organisation's index from the database: every article is chunked again and every passage
        whose embedding is missing or came from another model is embedded again."""
        with self.db.read() as conn:
            ids = [
                int(r[0]) for r in conn.execute(
                    "SELECT id FROM articles WHERE org_id = ? UNION SELECT article_id FROM chunks WHERE org_id = ?"
                    " ORDER BY 1", (org_id, org_id),
                )
            ]  # fmt: skip
            upto = conn.execute("SELECT coalesce(max(id), 0) FROM index_outbox WHERE org_id = ?", (org_id,)).fetchone()
        run = IndexRun()
        for article_id in ids:
            self._index_article(org_id, article_id, int(upto[0]), force=True, run=run)
            if progress is not None:
                progress(1)
        with self.db.write() as conn:
            conn.execute("DELETE FROM index_outbox WHERE org_id = ? AND id <= ?", (org_id, int(upto[0])))
        self.dense.forget(org_id)
        self.dense.get(org_id)  # rebuilt from the database and written out sealed
        return run

    def _published(self, conn: Connection, org_id: int, article_id: int) -> Any:
        return conn.execute(
            "SELECT a.published_version, v.title, v.content FROM articles a JOIN article_versions v"
            " ON v.article_id = a.id AND v.version = a.published_version"
            " WHERE a.org_id = ? AND a.id = ? AND a.status = 'published'",
            (org_id, article_id),
        ).fetchone()

    def _plan(self, published: Any) -> list[_Planned]:
        if published is None:
            return []
        title = str(published["title"])
        planned = []
        for chunk in chunk_article(str(published["content"]), self.max_words):
            indexed = chunk.indexed_text(title)
            context = " > ".join((title, *chunk.heading_path))
            planned.append(_Planned(chunk, indexed, _sha(indexed), flags.passage_sha256(chunk.text), context))
        return planned

    def _screen(
        self, planned: list[_Planned], existing: list[Any], decided: dict[str, str], force: bool, run: IndexRun
    ) -> tuple[list[_Planned], list[flags.NewFlag]]:
        """The passages that may be indexed, and the new flags. Approved passages go in; pending and rejected ones
        stay out; the rest are scanned, except (unless forced) those already indexed with the same text."""
        indexed_before = {r["text_sha256"] for r in existing}
        to_scan = [
            p for p in planned
            if p.passage_sha256 not in decided and (force or p.sha256 not in indexed_before)
        ]  # fmt: skip
        results = self.scanner.scan_many([p.chunk.text for p in to_scan], [p.context for p in to_scan])
        run.scanned += len(to_scan)
        hit = {p.passage_sha256: r for p, r in zip(to_scan, results, strict=True) if r.flagged}
        found = [
            flags.NewFlag(p.chunk.index, p.passage_sha256, r.sentence or "", r.score, r.reason)
            for p in to_scan if (r := hit.get(p.passage_sha256)) is not None
        ]  # fmt: skip
        kept = [
            p for p in planned
            if decided.get(p.passage_sha256, "approved") == "approved" and p.passage_sha256 not in hit
        ]  # fmt: skip
        run.held += len(planned) - len(kept)
        return kept, found

    def _index_article(self, org_id: int, article_id: int, upto: int, force: bool, run: IndexRun) -> None:
        run.articles += 1
        with self.db.read() as conn:
            published = self._published(conn, org_id, article_id)
            existing = conn.execute(
                "SELECT id, version, text_sha256, embedder, embedding FROM chunks WHERE org_id = ? AND article_id = ?"
                " ORDER BY chunk_index",
                (org_id, article_id),
            ).fetchall()
            entry = conn.execute(
                "SELECT version, title, embedder, title_embedding FROM index_articles WHERE article_id = ?",
                (article_id,),
            ).fetchone()
            decided = flags.decisions(conn, org_id, article_id)
        everything = self._plan(published)
        planned, found = self._screen(everything, existing, decided, force, run)
        version = None if published is None else int(published["published_version"])
        title = None if published is None else str(published["title"])
        name = self.embedder.name if self.embedder is not None else ""
        same = (
            len(existing) == len(planned)
            and all(r["version"] == version and r["embedder"] == name for r in existing)
            and [r["text_sha256"] for r in existing] == [p.sha256 for p in planned]
            and (entry is None if version is None else entry is not None and entry["version"] == version
                 and entry["embedder"] == name)
        )  # fmt: skip
        vectors, title_vector = self._vectors(planned, existing, title, entry, run)
        with self.db.write() as conn:
            now = self._published(conn, org_id, article_id)
            if (None if now is None else int(now["published_version"])) != version:
                run.skipped.append(article_id)  # changed again meanwhile: its newer outbox row brings it back
                return
            present = {p.passage_sha256: p.chunk.index for p in everything}
            scanner = self.scanner.version
            run.flagged += flags.record_flags(conn, org_id, article_id, version or 0, found, present, scanner)
            if same and not force:
                conn.execute(
                    "DELETE FROM index_outbox WHERE org_id = ? AND article_id = ? AND id <= ?", (org_id, article_id, upto)
                )
                return
            before = read_state(conn, org_id)
            removed = [int(r["id"]) for r in existing]
            lexical.ensure_tables(conn, org_id)
            lexical.delete_chunks(conn, org_id, removed)
            conn.execute("DELETE FROM chunks WHERE org_id = ? AND article_id = ?", (org_id, article_id))
            conn.execute("DELETE FROM index_articles WHERE article_id = ?", (article_id,))
            lexical.put_article(conn, org_id, article_id, title, _visible(published, everything, planned))
            added = []
            if version is not None and title is not None:
                conn.execute(
                    "INSERT INTO index_articles (article_id, org_id, version, title, embedder, title_embedding)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (article_id, org_id, version, title, name, None if title_vector is None else to_blob(title_vector)),
                )
                added = [
                    self._insert(conn, org_id, article_id, version, title, p, None if vectors is None else vectors[i])
                    for i, p in enumerate(planned)
                ]
            after = (  # without an embedder the dense index keeps what it has
                IndexState(before.generation + 1, name, self.embedder.dim)
                if self.embedder is not None
                else IndexState(before.generation + 1, before.embedder, before.dim)
            )
            conn.execute(
                "INSERT INTO index_state (org_id, generation, embedder, dim, updated_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (org_id) DO UPDATE SET generation = excluded.generation, embedder = excluded.embedder,"
                " dim = excluded.dim, updated_at = excluded.updated_at",
                (org_id, after.generation, after.embedder, after.dim, now_iso()),
            )
            conn.execute(
                "DELETE FROM index_outbox WHERE org_id = ? AND article_id = ? AND id <= ?", (org_id, article_id, upto)
            )
        if before.embedder and name and before.embedder != name:
            log.warning(
                "embedder changed; run `appliance kb reindex` so every article is embedded by the new model",
                extra={"fields": {"org_id": org_id, "before": before.embedder, "now": name}},
            )
        run.changed += 1
        run.chunks_added += len(added)
        run.chunks_removed += len(removed)
        self.dense.apply(org_id, before.generation, after, removed, added, vectors)

    def _vectors(
        self, planned: list[_Planned], existing: list[Any], title: str | None, entry: Any, run: IndexRun
    ) -> tuple[npt.NDArray[np.float32] | None, npt.NDArray[np.float32] | None]:
        """Embeddings of the passages and of the title, reusing those of unchanged text from the same model."""
        if self.embedder is None:
            return None, None
        dim, name = self.embedder.dim, self.embedder.name
        known = {
            r["text_sha256"]: from_blob(r["embedding"], dim)
            for r in existing
            if r["embedder"] == name and r["embedding"] is not None and len(r["embedding"]) == 4 * dim
        }
        title_vector = None
        if (title is not None and entry is not None and entry["title"] == title and entry["embedder"] == name
                and entry["title_embedding"] is not None):  # fmt: skip
            title_vector = from_blob(entry["title_embedding"], dim)
        out = np.zeros((len(planned), dim), dtype=np.float32)
        todo = [i for i, p in enumerate(planned) if p.sha256 not in known]
        texts = [planned[i].indexed for i in todo]
        if title is not None and title_vector is None:
            texts.append(title)
        if texts:
            embedded = self.embedder.embed(texts)
            out[todo] = embedded[: len(todo)]
            if title is not None and title_vector is None:
                title_vector = embedded[-1]
            run.embedded += len(texts)
        for i, p in enumerate(planned):
            if p.sha256 in known:
                out[i] = known[p.sha256]
        return out, title_vector

    def _insert(self, conn: Connection, org_id: int, article_id: int, version: int, title: str, planned: _Planned,
                vector: npt.NDArray[np.float32] | None) -> int:  # fmt: skip
        chunk = planned.chunk
        cur = conn.execute(
            "INSERT INTO chunks (org_id, article_id, version, chunk_index, title, heading_path, text, start_offset,"
            " end_offset, text_sha256, embedder, embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                org_id, article_id, version, chunk.index, title, json.dumps(list(chunk.heading_path)), chunk.text,
                chunk.start, chunk.end, planned.sha256, self.embedder.name if self.embedder is not None else "",
                None if vector is None else to_blob(vector),
            ),
        )  # fmt: skip
        chunk_id = int(cur.lastrowid or 0)
        lexical.put_chunk(conn, org_id, chunk_id, article_id, title, chunk.heading_path, chunk.text)
        return chunk_id


def _visible(published: Any, everything: list[_Planned], kept: list[_Planned]) -> str:
    """The article's published text less the passages held out of the index (for its whole-text entry)."""
    if published is None:
        return ""
    content = str(published["content"])
    kept_ids = {id(p) for p in kept}
    for p in sorted((p for p in everything if id(p) not in kept_ids), key=lambda p: -p.chunk.start):
        content = content[: p.chunk.start] + content[p.chunk.end :]
    return content
