"""What a refusal offers instead of an answer: the articles the search found that may still help, so the customer
can read them, rephrase or ask for a person (a refusal no longer hands the conversation over by itself).

The bar for a suggestion is lower than for an answer, and kept in this one function so that it can be retuned
against the labelled questions without touching the flow.
"""

from __future__ import annotations

from appliance.retrieval.search import ArticleHit, SearchResult

# Below this confidence the refused answer's articles are likely unrelated to the question: nothing is offered.
SUGGEST_FLOOR = 30
MAX_SUGGESTIONS = 3
# An article is offered next to the best one only when its fused score is at least this share of the best's.
SCORE_SHARE = 0.5


def suggestions(result: SearchResult | None, confidence: int) -> list[ArticleHit]:
    """The articles to offer with a refusal whose answer had `confidence`: the best of the search, and after it
    those whose fused score is at least half of the best one's, at most three; none under SUGGEST_FLOOR."""
    if result is None or not result.articles or confidence < SUGGEST_FLOOR:
        return []
    best = result.articles[0]
    # Fused scores are z-scores within the question's pool: when the best is not above the pool's mean, a "half
    # of it" bar means nothing, so only the best is offered.
    if best.score <= 0:
        return [best]
    return [best, *[a for a in result.articles[1:] if a.score >= SCORE_SHARE * best.score]][:MAX_SUGGESTIONS]
