"""Analytics: the dashboard and recomputing its rollups, knowledge gaps in clusters (view_analytics), and reviewers'
labels on AI answers with their export for recalibration (review_ai_responses)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from appliance.analytics import gaps, reviews, rollup
from appliance.analytics.dashboard import dashboard
from appliance.auth.principal import Principal
from appliance.auth.roles import Permission
from appliance.web.deps import client_addr, instance, requires
from appliance.web.params import Id
from appliance.web.routes.conversations import person

router = APIRouter(tags=["analytics"])

P = Permission
DEFAULT_DAYS = 30


def _range(since: date | None, until: date | None) -> tuple[date, date]:
    """Both days included; by default the 30 days up to today (UTC)."""
    until = until or datetime.now(UTC).date()
    return since or until - timedelta(days=DEFAULT_DAYS - 1), until


@router.get("/api/analytics/dashboard", summary="The organisation's figures over a range of UTC days, from the rollups")
def get_dashboard(
    request: Request, principal: Principal = requires(P.VIEW_ANALYTICS), since: date | None = None,
    until: date | None = None, team_id: Id | None = None,
) -> dict[str, Any]:  # fmt: skip
    first, last = _range(since, until)
    return dashboard(instance(request).db, principal.org_id, first, last, team_id).public()


class RollupBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    since: date | None = Field(default=None, description="Also recompute these days (with until)")
    until: date | None = None


@router.post("/api/analytics/rollup", summary="Recompute the rollups now: what is due, and since..until if given")
def rollup_now(request: Request, body: RollupBody | None = None,
               principal: Principal = requires(P.VIEW_ANALYTICS)) -> dict[str, Any]:  # fmt: skip
    inst = instance(request)
    done = rollup.rollup_now(inst.db, principal.context(client_addr(request)), principal.org_id,
                             since=body.since if body else None, until=body.until if body else None,
                             retention_days=inst.settings.conversation_retention_days,
                             idle_hours=inst.settings.resolution_idle_hours)  # fmt: skip
    return dataclasses.asdict(done)


@router.get("/api/analytics/knowledge-gaps", summary="Refused questions clustered by meaning, largest first (audited)")
def knowledge_gaps(
    request: Request, principal: Principal = requires(P.VIEW_ANALYTICS), since: date | None = None,
    until: date | None = None, limit: int = Query(default=50, ge=1, le=gaps.MAX_CLUSTERS),
) -> dict[str, Any]:  # fmt: skip
    inst = instance(request)
    first, last = _range(since, until)
    report = gaps.knowledge_gaps(inst.db, principal.context(client_addr(request)), principal.org_id,
                                 inst.required_embedder, first, last, limit)  # fmt: skip
    return dataclasses.asdict(report)


class ReviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    verdict: Literal["correct", "incorrect"]
    reason: str | None = Field(default=None, max_length=reviews.MAX_REASON_CHARS,
                               description="Required when the verdict is incorrect")  # fmt: skip


@router.put("/api/messages/{message_id}/review", summary="Label an AI answer correct or incorrect (replaces a label)")
def set_review(message_id: Id, body: ReviewBody, request: Request,
               principal: Principal = requires(P.REVIEW_AI_RESPONSES)) -> dict[str, Any]:  # fmt: skip
    review = reviews.set_review(instance(request).db, principal.context(client_addr(request)), principal.org_id,
                                message_id, person(principal), body.verdict, body.reason)  # fmt: skip
    return dataclasses.asdict(review)


@router.delete("/api/messages/{message_id}/review", status_code=204, summary="Remove an AI answer's label")
def clear_review(message_id: Id, request: Request, principal: Principal = requires(P.REVIEW_AI_RESPONSES)) -> None:
    reviews.clear_review(instance(request).db, principal.context(client_addr(request)), principal.org_id, message_id)


@router.get("/api/reviews", summary="AI answers to review with their questions, newest first (audited)")
def list_reviews(
    request: Request, principal: Principal = requires(P.REVIEW_AI_RESPONSES), unreviewed: bool = False,
    verdict: str | None = None, outcome: str | None = None, band: str | None = None, since: date | None = None,
    until: date | None = None, limit: int = Query(default=100, ge=1, le=reviews.MAX_LIST),
    before: Id | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    wanted = reviews.ReviewFilter(unreviewed, verdict, outcome, band, since, until, limit, before)
    return reviews.list_replies(instance(request).db, principal.context(client_addr(request)), principal.org_id,
                                wanted)  # fmt: skip


@router.get("/api/reviews/export", summary="Review labels as JSON Lines, for recalibration (audited as an export)")
def export_reviews(request: Request, principal: Principal = requires(P.REVIEW_AI_RESPONSES),
                   since: date | None = None, until: date | None = None) -> Response:  # fmt: skip
    rows = reviews.export_labels(instance(request).db, principal.context(client_addr(request)), principal.org_id,
                                 since, until)  # fmt: skip
    body = "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows)
    return Response(body, media_type="application/x-ndjson",
                    headers={"Content-Disposition": 'attachment; filename="review-labels.jsonl"'})  # fmt: skip
