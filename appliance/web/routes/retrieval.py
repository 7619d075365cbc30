"""Search the published knowledge base as the answer engine does, so editors can see what a question retrieves."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from appliance.auth.principal import Principal
from appliance.auth.roles import Permission
from appliance.web.deps import instance, requires

router = APIRouter(tags=["knowledge"])


@router.get("/api/retrieval/search", summary="Hybrid search over published articles: articles and their passages")
def search(
    request: Request,
    principal: Principal = requires(Permission.MANAGE_KNOWLEDGE_BASE),
    q: str = Query(min_length=1, max_length=2000),
    k: int = Query(default=5, ge=1, le=50),
) -> dict[str, Any]:
    result = instance(request).knowledge.retriever.search(principal.org_id, q, k)
    return {
        "query": result.query,
        "dense_used": result.dense_used,
        "ms": round(result.ms, 2),
        "articles": [
            {
                "article_id": hit.article_id, "version": hit.version, "title": hit.title, "score": hit.score,
                "passages": [
                    {
                        "chunk_id": p.chunk_id, "heading_path": list(p.heading_path), "text": p.text,
                        "start": p.start, "end": p.end, "score": p.score, "lexical": p.lexical, "dense": p.dense,
                    }
                    for p in hit.passages
                ],
            }
            for hit in result.articles
        ],
    }  # fmt: skip
