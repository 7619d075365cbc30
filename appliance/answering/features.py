"""The evidence an answer's confidence is computed from, taken from one search: how far the best article stands
above the next, whether the lexical and dense legs agree on it, and how much of the question it covers (each
question word weighted by its rarity in the organisation's articles, so "Bixby" counts more than "TV")."""

from __future__ import annotations

import math
from collections.abc import Callable

from appliance.answering.text import content_terms, term_set, units
from appliance.retrieval.search import ArticleHit, SearchResult

# The order is the calibration model's input order; a calibration file names the features it was fitted on.
FEATURES = (
    "fused", "margin", "lexical", "dense", "passage_cos", "cos_margin", "dense_agree", "lexical_agree",
    "coverage", "bm25", "n_terms", "idf_coverage", "idf_margin", "sentence_coverage", "title_coverage",
    "distinct_coverage", "max_idf", "margin_third", "lexical_margin", "dense_margin", "runner_up_overlap",
)  # fmt: skip
DENSE_FEATURES = frozenset({"dense", "passage_cos", "cos_margin", "dense_agree", "dense_margin"})
NO_RUNNER_UP = -1.0  # the margin's floor when only one article matched

Frequencies = Callable[[list[str]], tuple[int, dict[str, int]]]


class QuestionTerms:
    """The question's content terms, each weighted by its inverse document frequency in the organisation."""

    def __init__(self, question: str, frequencies: Frequencies) -> None:
        self.terms = content_terms(question)
        total, df = frequencies(self.terms) if self.terms else (0, {})
        self.weights = {
            t: max(math.log((total + 1) / (df.get(t, 0) + 0.5)), 0.0) if total else 1.0 for t in self.terms
        }  # fmt: skip
        self._sum = sum(self.weights.values()) or 1.0

    @classmethod
    def from_weights(cls, weights: dict[str, float]) -> QuestionTerms:
        """The terms with the weights recorded when an answer was made (replaying it needs no index)."""
        q = cls.__new__(cls)
        q.terms, q.weights = list(weights), dict(weights)
        q._sum = sum(q.weights.values()) or 1.0
        return q

    def covered(self, found: set[str]) -> float:
        """The weighted share of the question's terms among these (stemmed) words, 0..1."""
        return sum(w for t, w in self.weights.items() if t in found) / self._sum


def _article_terms(hit: ArticleHit) -> set[str]:
    return term_set(hit.title + " " + " ".join(p.text for p in hit.passages))


def compute(q: QuestionTerms, result: SearchResult) -> dict[str, float]:
    """The features of the search's best article as the answer to the question (all zero with no article)."""
    arts = result.articles
    terms, weights, covered = q.terms, q.weights, q.covered
    if not arts or not terms:
        return dict.fromkeys(FEATURES, 0.0)

    a0, a1 = arts[0], arts[1] if len(arts) > 1 else None
    t0 = _article_terms(a0)
    t1 = _article_terms(a1) if a1 else set()
    best_cos = max(p.dense for p in a0.passages)
    other_cos = max((max(p.dense for p in a.passages) for a in arts[1:]), default=0.0)
    sentence_cov = max(
        (covered(term_set(u.text)) for p in a0.passages for u in units(p.text)), default=0.0
    )  # fmt: skip
    return {
        "fused": a0.score,
        "margin": a0.score - (a1.score if a1 else NO_RUNNER_UP),
        "lexical": a0.lexical,
        "dense": a0.dense,
        "passage_cos": best_cos,
        "cos_margin": best_cos - other_cos,
        "dense_agree": float(all(a0.dense >= a.dense for a in arts)) if result.dense_used else 0.0,
        "lexical_agree": float(all(a0.lexical >= a.lexical for a in arts)),
        "coverage": sum(t in t0 for t in terms) / len(terms),
        "bm25": math.log1p(max(p.lexical for p in a0.passages)),
        "n_terms": float(len(terms)),
        "idf_coverage": covered(t0),
        "idf_margin": covered(t0) - covered(t1),
        "sentence_coverage": sentence_cov,
        "title_coverage": covered(term_set(a0.title)),
        "distinct_coverage": covered(t0 - t1),
        "max_idf": max(weights.values()),
        "margin_third": a0.score - (arts[2].score if len(arts) > 2 else NO_RUNNER_UP),
        "lexical_margin": a0.lexical - max((a.lexical for a in arts[1:]), default=0.0),
        "dense_margin": a0.dense - max((a.dense for a in arts[1:]), default=0.0),
        # near-duplicate articles (the same text under two titles) share the win: a small margin then means less
        "runner_up_overlap": len(t0 & t1) / len(t0 | t1) if t1 else 0.0,
    }
