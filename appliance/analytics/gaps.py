"""Knowledge gaps, grouped by meaning: the customer questions the assistant refused for lack of knowledge (the
knowledge_gaps rows: no match, or too little confidence) over a range of days, clustered with the installation's
sentence embedder, so that an editor sees "23 people asked about parking fees" rather than 23 lines.

Clustering is average-linkage agglomerative over cosine similarity: start with one cluster per question and
repeatedly merge the two clusters whose questions are, on average, most similar, until no pair reaches
SIMILARITY_THRESHOLD. It needs no number of clusters and does not depend on the order questions arrived in; ties
go to the lowest index (questions are ordered oldest first), so the same gaps always give the same clusters.

Reading gaps returns customers' questions: it is audited (analytics.gaps_read) with the range and the counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np

from appliance import audit
from appliance.analytics.definitions import check_range, day_bounds
from appliance.audit.events import Context, KnowledgeGapsRead
from appliance.errors import InvalidValue
from appliance.inference.base import Embedder
from appliance.store import Database

if TYPE_CHECKING:
    import numpy.typing as npt

# Average cosine similarity (all-MiniLM-L6-v2) at which two groups of questions are one gap. Chosen with
# bench/gap_clusters.py on the dev data (intents as true gaps): 0.5 gives the best mean pairwise F1 over Banking77 dev
# (fine-grained banking intents: F1 0.466) and CLINC150 val (100 intents across domains: F1 0.626); 0.45 and 0.6 each
# win on one set only. Close neighbours do merge (precision 0.39 on Banking77), which an editor reads as one subject.
SIMILARITY_THRESHOLD = 0.5
MAX_GAPS = 2000  # the newest of the range: a 16 MB similarity matrix, 1-2 s of merging on one core
MAX_EXAMPLES = 5
MAX_CLUSTERS = 500


@dataclass(frozen=True)
class BestArticle:
    article_id: int
    version: int | None
    title: str | None
    score: float | None


@dataclass(frozen=True)
class GapCluster:
    count: int
    suggested_title: str  # the most central question: the one most similar, on average, to the others
    examples: list[str]  # up to MAX_EXAMPLES distinct questions, most central first
    best_article: BestArticle | None  # the highest-scoring article any of them retrieved
    reasons: dict[str, int]  # no_match / low_confidence
    first_seen: str
    last_seen: str


@dataclass(frozen=True)
class GapReport:
    since: str
    until: str
    gaps: int  # questions clustered
    truncated: bool  # the range held more than MAX_GAPS: the newest were clustered
    threshold: float
    clusters: list[GapCluster]


def cluster(vectors: npt.NDArray[np.float32], threshold: float = SIMILARITY_THRESHOLD) -> list[list[int]]:
    """Average-linkage clusters of unit vectors, as lists of row indices (ascending), in order of first member."""
    n = len(vectors)
    if n == 0:
        return []
    sims = (vectors @ vectors.T).astype(np.float32)
    np.fill_diagonal(sims, -np.inf)
    sizes = np.ones(n, np.float32)
    members: list[list[int]] = [[i] for i in range(n)]
    while n > 1:
        i, j = divmod(int(np.argmax(sims)), n)
        if sims[i, j] < threshold:
            break
        i, j = min(i, j), max(i, j)
        merged = (sizes[i] * sims[i] + sizes[j] * sims[j]) / (sizes[i] + sizes[j])  # Lance-Williams, average link
        sims[i], sims[:, i] = merged, merged
        sims[i, i] = -np.inf
        sims[j], sims[:, j] = -np.inf, -np.inf
        sizes[i] += sizes[j]
        members[i] += members[j]
        members[j] = []
    return sorted((sorted(m) for m in members if m), key=lambda m: m[0])


def _central_first(indices: list[int], vectors: npt.NDArray[np.float32]) -> list[int]:
    block = vectors[indices]
    centrality = (block @ block.T).mean(axis=1)
    order = sorted(range(len(indices)), key=lambda k: (-round(float(centrality[k]), 6), indices[k]))
    return [indices[k] for k in order]


def _best(rows: list[Any]) -> BestArticle | None:
    scored = [r for r in rows if r["best_article_id"] is not None]
    if not scored:
        return None
    top = max(scored, key=lambda r: (r["best_score"] or 0.0, -r["id"]))
    return BestArticle(int(top["best_article_id"]), top["best_version"], top["best_title"], top["best_score"])


def _summarise(rows: list[Any], indices: list[int], vectors: npt.NDArray[np.float32]) -> GapCluster:
    ordered = _central_first(indices, vectors)
    examples: list[str] = []
    for k in ordered:
        if rows[k]["question"] not in examples and len(examples) < MAX_EXAMPLES:
            examples.append(rows[k]["question"])
    members = [rows[k] for k in indices]
    reasons: dict[str, int] = {}
    for r in members:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    seen = sorted(r["created_at"] for r in members)
    return GapCluster(len(members), rows[ordered[0]]["question"], examples, _best(members), reasons, seen[0], seen[-1])


def _read(db: Database, ctx: Context, org_id: int, since: date, until: date) -> tuple[list[Any], bool]:
    start, end = day_bounds(since)[0], day_bounds(until)[1]
    with db.write() as conn:
        rows = conn.execute(
            "SELECT g.*, v.title AS best_title FROM knowledge_gaps g LEFT JOIN article_versions v"
            " ON v.article_id = g.best_article_id AND v.version = g.best_version AND v.org_id = g.org_id"
            " WHERE g.org_id = ? AND g.created_at >= ? AND g.created_at < ? ORDER BY g.created_at DESC, g.id DESC"
            " LIMIT ?", (org_id, start, end, MAX_GAPS + 1),
        ).fetchall()  # fmt: skip
        kept = rows[:MAX_GAPS]
        audit.record(conn, ctx, KnowledgeGapsRead(since.isoformat(), until.isoformat(), len(kept)))
    return kept[::-1], len(rows) > MAX_GAPS


def knowledge_gaps(db: Database, ctx: Context, org_id: int, embedder: Callable[[], Embedder], since: date,
                   until: date, limit: int = 50) -> GapReport:  # fmt: skip
    """The range's gaps in clusters, largest first (then the most recently seen). The embedder is loaded only when
    there are questions to cluster."""
    check_range(since, until)
    if not 1 <= limit <= MAX_CLUSTERS:
        raise InvalidValue(f"limit must be 1..{MAX_CLUSTERS}")
    rows, truncated = _read(db, ctx, org_id, since, until)
    vectors = embedder().embed([r["question"] for r in rows]) if rows else np.zeros((0, 1), np.float32)
    clusters = [_summarise(rows, indices, vectors) for indices in cluster(vectors)]
    clusters.sort(key=lambda c: c.last_seen, reverse=True)
    clusters.sort(key=lambda c: c.count, reverse=True)  # stable: equal counts stay most recently seen first
    return GapReport(since.isoformat(), until.isoformat(), len(rows), truncated, SIMILARITY_THRESHOLD,
                     clusters[:limit])  # fmt: skip
