"""Hybrid search over an organisation's published articles.

Lexical leg (BM25 from FTS5): an article scores by its best passage plus a tenth of its other matching passages,
and by its whole text; each of the two is divided by the question's best, and they are averaged. Dense leg: the
cosine of the question with the article's best passage, plus half its cosine with the article's title. The two
legs' best articles are pooled; on that pool each leg's scores are standardised (z-scores) and averaged with a
weight tuned on the dev data. Plain reciprocal-rank fusion is not used: it throws away how far apart the scores
are, and on the dev data it loses to the lexical leg alone (R@1 0.608 against 0.676 on supportbench_emanual).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from appliance.inference.base import Embedder
from appliance.retrieval import lexical
from appliance.retrieval.dense import DenseIndexes
from appliance.store import Connection, Database

log = logging.getLogger("appliance.retrieval")
MAX_QUERY_CHARS = 2000


@dataclass(frozen=True)
class FusionConfig:
    """The knobs, at the values tuned on the dev data (`appliance eval retrieval`)."""

    lexical_weight: float = 0.5  # weight of the lexical z-score; the dense one gets the rest
    pool: int = 20  # best articles taken from each leg
    lexical_chunks: int = 1000  # passages the lexical leg ranks
    dense_chunks: int = 400  # passages the dense leg takes from the vector index (1000 ranks the same on dev)
    other_passages: float = 0.1  # share of an article's other matching passages added to its best
    whole_article: float = 0.5  # share of the whole-article BM25 in the lexical score
    title: float = 0.5  # weight of the title cosine added to the best passage cosine
    passages_per_article: int = 5

    def validated(self) -> FusionConfig:
        if not 0.0 <= self.lexical_weight <= 1.0 or not 0.0 <= self.whole_article <= 1.0:
            raise ValueError("lexical_weight and whole_article must be within 0..1")
        if min(self.pool, self.lexical_chunks, self.dense_chunks, self.passages_per_article) < 1:
            raise ValueError("pool and candidate counts must be positive")
        return self


@dataclass(frozen=True)
class Passage:
    chunk_id: int
    article_id: int
    version: int
    title: str
    heading_path: tuple[str, ...]
    text: str
    start: int  # offsets in the article version's content
    end: int
    score: float  # the passage's rank within its article: mean of its normalised BM25 and its cosine
    lexical: float  # BM25 (0 when no query term occurs)
    dense: float  # cosine with the question (0 when the dense leg is off)


@dataclass(frozen=True)
class ArticleHit:
    article_id: int
    version: int
    title: str
    score: float  # the fused score (standardised within the question's pool)
    passages: tuple[Passage, ...]  # best first
    lexical: float  # the article's lexical score, 0..1 (1 = the question's best)
    dense: float  # best passage cosine plus the weighted title cosine (0 when the dense leg is off)


@dataclass(frozen=True)
class SearchResult:
    query: str
    articles: list[ArticleHit]
    dense_used: bool
    ms: float

    @property
    def passages(self) -> list[Passage]:
        return sorted((p for a in self.articles for p in a.passages), key=lambda p: -p.score)


class Retriever:
    def __init__(
        self, db: Database, embedder: Embedder | None, dense: DenseIndexes, config: FusionConfig | None = None
    ) -> None:
        self.db = db
        self.embedder = embedder
        self.dense = dense
        self.config = (config or FusionConfig()).validated()

    def search(self, org_id: int, query: str, k: int = 10) -> SearchResult:
        started = time.perf_counter()
        query = query.strip()[:MAX_QUERY_CHARS]
        cfg = self.config
        terms = lexical.query_terms(query)
        qv, dense_chunks = self._dense_leg(org_id, query)
        with self.db.read() as conn:
            chunk_hits = lexical.search_chunks(conn, org_id, terms, cfg.lexical_chunks)
            article_hits = lexical.search_articles(conn, org_id, terms, cfg.lexical_chunks)
            lex = _lexical_scores(chunk_hits, article_hits, cfg)
            pool = _top(lex, cfg.pool)
            chunk_article = {c: a for c, a, _ in chunk_hits} | _articles_of(conn, org_id, [c for c, _ in dense_chunks])
            best_cos: dict[int, float] = {}
            for chunk_id, cos in dense_chunks:
                aid = chunk_article.get(chunk_id)
                if aid is not None and cos > best_cos.get(aid, -2.0):
                    best_cos[aid] = cos
            if qv is not None:
                pool += [a for a in _top(best_cos, cfg.pool) if a not in pool]
            pool = _published(conn, org_id, pool)
            titles = _title_vectors(conn, org_id, pool) if qv is not None else {}
            # An article none of whose passages is among the dense leg's best scores at most the worst of them.
            floor = dense_chunks[-1][1] if len(dense_chunks) >= cfg.dense_chunks else 0.0
            dense: dict[int, float] = {}
            if qv is not None:
                for aid in pool:
                    title_vec = titles.get(aid)
                    title_cos = float(title_vec @ qv) if title_vec is not None else 0.0
                    dense[aid] = best_cos.get(aid, floor) + cfg.title * title_cos
            fused = _fuse(pool, lex, dense if qv is not None else None, cfg.lexical_weight)
            ranked = sorted(fused.items(), key=lambda kv: -kv[1])[:k]
            chunk_lex = {c: s for c, _, s in chunk_hits}
            chunk_cos = dict(dense_chunks)
            rows = _passage_rows(conn, org_id, [a for a, _ in ranked], set(chunk_lex) | set(chunk_cos))
        best_chunk_lex = max(chunk_lex.values(), default=0.0)
        hits = []
        for aid, score in ranked:
            scored = []
            for row in rows.get(aid, []):
                lex_norm = chunk_lex.get(row["id"], 0.0) / best_chunk_lex if best_chunk_lex > 0 else 0.0
                cos = chunk_cos.get(row["id"], 0.0)
                scored.append(_passage(row, lex_norm if qv is None else 0.5 * lex_norm + 0.5 * cos,
                                       chunk_lex.get(row["id"], 0.0), cos))  # fmt: skip
            scored.sort(key=lambda p: -p.score)
            if scored:
                top = tuple(scored[: cfg.passages_per_article])
                hits.append(ArticleHit(aid, top[0].version, top[0].title, score, top, lex.get(aid, 0.0),
                                       dense.get(aid, 0.0)))  # fmt: skip
        return SearchResult(query, hits, qv is not None, (time.perf_counter() - started) * 1000)

    def _dense_leg(self, org_id: int, query: str) -> tuple[npt.NDArray[np.float32] | None, list[tuple[int, float]]]:
        """The question's embedding and the index's best passages for it; (None, []) when the leg is off."""
        if self.embedder is None or self.config.lexical_weight >= 1.0 or not query:
            return None, []
        state, index = self.dense.get(org_id)
        if index is None or state.embedder != self.embedder.name or not len(index):
            return None, []
        vector: npt.NDArray[np.float32] = self.embedder.embed([query])[0]
        return vector, index.search(vector, self.config.dense_chunks)


def _top(scores: dict[int, float], n: int) -> list[int]:
    return [a for a, _ in sorted(scores.items(), key=lambda kv: -kv[1])[:n]]


def _lexical_scores(
    chunk_hits: list[tuple[int, int, float]], article_hits: list[tuple[int, float]], cfg: FusionConfig
) -> dict[int, float]:
    best: dict[int, float] = {}
    total: dict[int, float] = {}
    for _, aid, score in chunk_hits:
        best[aid] = max(best.get(aid, 0.0), score)
        total[aid] = total.get(aid, 0.0) + score
    by_chunks = {a: best[a] + cfg.other_passages * (total[a] - best[a]) for a in best}
    by_article = dict(article_hits)
    top_chunks, top_articles = max(by_chunks.values(), default=0.0), max(by_article.values(), default=0.0)
    out: dict[int, float] = {}
    for aid in set(by_chunks) | set(by_article):
        c = by_chunks.get(aid, 0.0) / top_chunks if top_chunks > 0 else 0.0
        w = by_article.get(aid, 0.0) / top_articles if top_articles > 0 else 0.0
        out[aid] = (1.0 - cfg.whole_article) * c + cfg.whole_article * w
    return out


def _zscores(values: list[float]) -> list[float]:
    array = np.asarray(values, dtype=np.float64)
    std = float(array.std())
    return [0.0] * len(values) if std < 1e-12 else list((array - array.mean()) / std)


def _fuse(pool: list[int], lex: dict[int, float], dense: dict[int, float] | None, weight: float) -> dict[int, float]:
    if not pool:
        return {}
    z_lex = _zscores([lex.get(a, 0.0) for a in pool])
    if dense is None:
        return dict(zip(pool, z_lex, strict=True))
    z_dense = _zscores([dense.get(a, 0.0) for a in pool])
    return {a: weight * zl + (1.0 - weight) * zd for a, zl, zd in zip(pool, z_lex, z_dense, strict=True)}


def _articles_of(conn: Connection, org_id: int, chunk_ids: list[int]) -> dict[int, int]:
    if not chunk_ids:
        return {}
    marks = ",".join("?" * len(chunk_ids))
    rows = conn.execute(f"SELECT id, article_id FROM chunks WHERE org_id = ? AND id IN ({marks})", (org_id, *chunk_ids))
    return {int(r[0]): int(r[1]) for r in rows}


def _published(conn: Connection, org_id: int, article_ids: list[int]) -> list[int]:
    """Those of the articles that are published right now, in the given order: an article archived or withdrawn
    is gone from search at once, before its index task runs. A republished article is served from the version it
    was last indexed at (each passage names it) until its new version is indexed."""
    if not article_ids:
        return []
    marks = ",".join("?" * len(article_ids))
    live = {
        int(r[0]) for r in conn.execute(
            f"SELECT id FROM articles WHERE org_id = ? AND status = 'published' AND id IN ({marks})",
            (org_id, *article_ids),
        )
    }  # fmt: skip
    return [a for a in article_ids if a in live]


def _title_vectors(conn: Connection, org_id: int, article_ids: list[int]) -> dict[int, npt.NDArray[np.float32]]:
    if not article_ids:
        return {}
    marks = ",".join("?" * len(article_ids))
    rows = conn.execute(
        f"SELECT article_id, title_embedding FROM index_articles WHERE org_id = ? AND article_id IN ({marks})"
        " AND title_embedding IS NOT NULL",
        (org_id, *article_ids),
    )
    return {int(r[0]): np.frombuffer(r[1], dtype="<f4").astype(np.float32) for r in rows}


def _passage_rows(conn: Connection, org_id: int, article_ids: list[int], matched: set[int]) -> dict[int, list[Any]]:
    """The passages of these articles that either leg matched (or, for an article with none, its first ones)."""
    if not article_ids:
        return {}
    marks = ",".join("?" * len(article_ids))
    columns = "id, article_id, version, title, heading_path, text, start_offset, end_offset"
    rows = conn.execute(
        f"SELECT {columns} FROM chunks WHERE org_id = ? AND article_id IN ({marks}) ORDER BY article_id, chunk_index",
        (org_id, *article_ids),
    ).fetchall()
    out: dict[int, list[Any]] = {}
    for row in rows:
        out.setdefault(int(row["article_id"]), []).append(row)
    return {aid: [r for r in found if r["id"] in matched] or found[:3] for aid, found in out.items()}


def _passage(row: Any, score: float, lex: float, cos: float) -> Passage:
    return Passage(
        int(row["id"]), int(row["article_id"]), int(row["version"]), row["title"],
        tuple(json.loads(row["heading_path"])), row["text"], int(row["start_offset"]), int(row["end_offset"]),
        score, lex, cos,
    )  # fmt: skip
