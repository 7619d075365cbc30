"""The review of AI answers (/console/reviews, review_ai_responses): the assistant's replies with the question each
answered, its confidence and sources, filtered like the API's list; each marked correct, or incorrect with a reason,
or cleared. The marks are form posts that call the same functions as the API's routes (checked and audited there);
with htmx the reviewed row is swapped in place, without it the list comes back. The export is the API's.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, Response

from appliance.analytics import reviews
from appliance.analytics.definitions import ANSWER_OUTCOMES, CONFIDENCE_BANDS
from appliance.auth.orgs import get_org
from appliance.auth.principal import Principal
from appliance.auth.roles import Permission
from appliance.console.analytics import parse_day
from appliance.console.render import ConsoleRoute, is_htmx, page, safe_next, see_other
from appliance.errors import InvalidValue
from appliance.web.deps import client_addr, instance, requires
from appliance.web.params import Id
from appliance.web.routes.conversations import person

router = APIRouter(prefix="/console/reviews", route_class=ConsoleRoute, include_in_schema=False)
P = Permission
PATH = "/console/reviews"
LIST_ID = "review-list"  # htmx names the element it swaps in the HX-Target header
PAGE_SIZE = 50
STATES = {"": "Any", "unreviewed": "Not reviewed", "correct": "Marked correct", "incorrect": "Marked incorrect"}
Text = Annotated[str, Query(max_length=20)]


def _filter(state: str, outcome: str, band: str, since: str, until: str, before: int | None) -> reviews.ReviewFilter:
    if state not in STATES:
        raise InvalidValue(f"review must be one of {', '.join(k for k in STATES if k)}")
    return reviews.ReviewFilter(unreviewed=state == "unreviewed", verdict=state if state in reviews.VERDICTS else None,
                                outcome=outcome or None, band=band or None, since=parse_day(since, "since"),
                                until=parse_day(until, "until"), limit=PAGE_SIZE, before=before)  # fmt: skip


def list_url(query: dict[str, Any]) -> str:
    kept = {k: v for k, v in query.items() if v not in ("", None)}
    return f"{PATH}?{urlencode(kept)}" if kept else PATH


def export_url(since: str, until: str) -> str:
    """The API's JSON Lines export of the labels, for the same days."""
    dates = {k: v for k, v in (("since", since), ("until", until)) if v}
    return f"/api/reviews/export?{urlencode(dates)}" if dates else "/api/reviews/export"


def _row(request: Request, principal: Principal, message_id: int, error: str | None = None) -> Response:
    item = reviews.reply_for_review(instance(request).db, principal.context(client_addr(request)), principal.org_id,
                                    message_id)  # fmt: skip
    return page(request, "_review_row.html", principal, item=item, error=error, back=PATH)


@router.get("")
def reviews_page(request: Request, principal: Principal = requires(P.REVIEW_AI_RESPONSES), review: Text = "",
                 outcome: Text = "", band: Text = "", since: Text = "", until: Text = "",
                 before: Id | None = None) -> Response:  # fmt: skip
    wanted = _filter(review, outcome, band, since, until, before)
    db = instance(request).db
    items = reviews.list_replies(db, principal.context(client_addr(request)), principal.org_id, wanted)
    query = {"review": review, "outcome": outcome, "band": band, "since": since, "until": until}
    older = list_url({**query, "before": items[-1]["message_id"]}) if len(items) == PAGE_SIZE else None
    here = list_url({**query, "before": before})
    context: dict[str, Any] = {"items": items, "query": query, "older": older, "back": here,
                               "export_url": export_url(since, until)}  # fmt: skip
    if is_htmx(request) and request.headers.get("hx-target") == LIST_ID:
        return page(request, "_review_list.html", principal, **context)
    return page(request, "reviews.html", principal, page_name="reviews", org_name=get_org(db, principal.org_id).name,
                states=STATES, outcomes=ANSWER_OUTCOMES, bands=[b for _, b in CONFIDENCE_BANDS],
                **context)  # fmt: skip


def _done(request: Request, principal: Principal, message_id: int, back: str) -> Response:
    if is_htmx(request):
        return _row(request, principal, message_id)
    return see_other(f"{safe_next(back)}#answer-{message_id}")


@router.post("/{message_id}")
def mark(message_id: Id, request: Request, verdict: Annotated[str, Form(max_length=20)],
         reason: Annotated[str, Form(max_length=reviews.MAX_REASON_CHARS)] = "",
         back: Annotated[str, Form(max_length=2000)] = PATH,
         principal: Principal = requires(P.REVIEW_AI_RESPONSES)) -> Response:  # fmt: skip
    """Mark an answer correct, or incorrect with a reason (replacing an earlier mark)."""
    try:
        reviews.set_review(instance(request).db, principal.context(client_addr(request)), principal.org_id,
                           message_id, person(principal), verdict, reason)  # fmt: skip
    except InvalidValue as exc:
        if not is_htmx(request):
            raise
        return _row(request, principal, message_id, error=exc.message)  # the row says what to fix, in place
    return _done(request, principal, message_id, back)


@router.post("/{message_id}/clear")
def clear(message_id: Id, request: Request, back: Annotated[str, Form(max_length=2000)] = PATH,
          principal: Principal = requires(P.REVIEW_AI_RESPONSES)) -> Response:  # fmt: skip
    reviews.clear_review(instance(request).db, principal.context(client_addr(request)), principal.org_id, message_id)
    return _done(request, principal, message_id, back)
