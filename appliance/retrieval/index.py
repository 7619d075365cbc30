"""Indexing: what customers may see (the published version of each published article), chunked, in the lexical
index (FTS5) and the dense index (embeddings in the database, FAISS in memory).

Article changes land in `index_outbox` in the same transaction as the change. `process_pending` works through it
article by article: chunk and embed outside any transaction (embeddings of unchanged passages are reused), then
swap the article's chunks in one write transaction that also bumps the organisation's index generation and clears
the outbox rows it covered. A crash before that commit leaves the previous index whole and the outbox rows in
place, so the work is simply done again. Drafts and archived articles have no chunks.
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
from appliance.knowledge.chunking import Chunk, chunk_article
from appliance.retrieval import lexical
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
    skipped: list[int] = field(default_factory=list)  # articles that changed again while being indexed


@dataclass(frozen=True)
class _Planned:
    chunk: Chunk
    indexed: str
    sha256: str


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Indexer:
    def __init__(
        self, db: Database, embedder: Embedder | None, dense: DenseIndexes, max_words: int = CHUNK_WORDS
    ) -> None:
        """Without an embedder (the model is not installed) articles are indexed for lexical search only, and are
        embedded by the next change or `appliance kb reindex` once the model is in place."""
        self.db = db
        self.embedder = embedder
        self.dense = dense
        self.max_words = max_words

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
            planned.append(_Planned(chunk, indexed, _sha(indexed)))
        return planned

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
        planned = self._plan(published)
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
            lexical.put_article(conn, org_id, article_id, title, "" if published is None else str(published["content"]))
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
