"""The analytics pages (view_analytics): the dashboard (/console/analytics) with its "Recompute now", and the
knowledge gaps (/console/analytics/gaps). Both read through the same domain functions as the API's routes.

The dashboard is rendered whole on the server: every figure is in a table or a list. Its charts are drawn by
dashboard.js from JSON in a data attribute (data, never executed) and only repeat what the tables say.
Changing the range or the team swaps the figures in place (htmx) and updates the address.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, Response

from appliance.analytics import gaps, rollup
from appliance.analytics.dashboard import Dashboard, dashboard
from appliance.auth.orgs import get_org
from appliance.auth.principal import Principal
from appliance.auth.roles import Permission
from appliance.conversations import routing
from appliance.console.render import ConsoleRoute, is_htmx, page, see_other
from appliance.errors import InvalidValue
from appliance.web.deps import client_addr, instance, requires
from appliance.web.params import parse_id
from appliance.web.routes.analytics import DEFAULT_DAYS

router = APIRouter(prefix="/console/analytics", route_class=ConsoleRoute, include_in_schema=False)
P = Permission
PATH = "/console/analytics"
FIGURES_ID = "dashboard-figures"  # htmx names the element it swaps in the HX-Target header
KNOWLEDGE_NEW = "/console/knowledge/new"
DayText = Annotated[str, Query(max_length=10)]


def parse_day(value: str, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidValue(f"{name} must be a date (YYYY-MM-DD)") from None


def chosen_range(since: str, until: str) -> tuple[date, date]:
    """Both days included; by default the 30 days up to today (UTC), as the API's."""
    last = parse_day(until, "until") or datetime.now(UTC).date()
    return parse_day(since, "since") or last - timedelta(days=DEFAULT_DAYS - 1), last


def parse_team(value: str) -> int | None:
    return parse_id(value, "team")


def dashboard_url(first: date, last: date, team_id: int | None) -> str:
    query = {"since": first.isoformat(), "until": last.isoformat(), **({"team": team_id} if team_id else {})}
    return f"{PATH}?{urlencode(query)}"


def _series(label: str, data: list[Any]) -> dict[str, Any]:
    return {"label": label, "data": data}


def charts(d: Dashboard) -> dict[str, Any]:
    """What dashboard.js draws: each chart's kind, labels and series, the same figures as the tables."""
    days = [v.day for v in d.volume]
    r, bands = d.resolution, d.ai_accuracy.by_band
    return {
        "volume": {"kind": "bar", "labels": days, "series": [
            _series("Conversations", [v.conversations for v in d.volume]),
            _series("Customer messages", [v.customer_messages for v in d.volume])]},
        "resolution": {"kind": "bar", "labels": ["Assistant", "Agents", "Other", "Still open"], "series": [
            _series("Conversations", [r.ai_resolved, r.agent_resolved, r.other_resolved, r.open])]},
        "csat": {"kind": "bar", "labels": list(d.csat.distribution), "series": [
            _series("Ratings", list(d.csat.distribution.values()))]},
        "sentiment": {"kind": "line", "labels": days, "max": 100, "series": [
            _series("Average sentiment (0 negative, 100 positive)", [g.average for g in d.sentiment.per_day])]},
        "accuracy": {"kind": "bar", "stacked": True, "labels": [b.band for b in bands], "series": [
            _series("Correct", [b.correct for b in bands]), _series("Incorrect", [b.incorrect for b in bands]),
            _series("Not reviewed", [b.answers - b.reviewed for b in bands])]},
    }  # fmt: skip


def _figures(request: Request, principal: Principal, first: date, last: date, team_id: int | None) -> dict[str, Any]:
    figures = dashboard(instance(request).db, principal.org_id, first, last, team_id)
    return {"d": figures, "charts": charts(figures), "since": first.isoformat(), "until": last.isoformat(),
            "team_id": team_id, "url": dashboard_url(first, last, team_id)}  # fmt: skip


@router.get("")
def dashboard_page(request: Request, principal: Principal = requires(P.VIEW_ANALYTICS), since: DayText = "",
                   until: DayText = "", team: Annotated[str, Query(max_length=20)] = "") -> Response:  # fmt: skip
    first, last = chosen_range(since, until)
    context = _figures(request, principal, first, last, parse_team(team))
    if is_htmx(request) and request.headers.get("hx-target") == FIGURES_ID:
        return page(request, "_dashboard_figures.html", principal, **context)
    db = instance(request).db
    return page(request, "dashboard.html", principal, page_name="dashboard",
                org_name=get_org(db, principal.org_id).name, teams=routing.list_teams(db, principal.org_id),
                **context)  # fmt: skip


@router.post("/rollup")
def recompute(request: Request, since: Annotated[str, Form(max_length=10)], until: Annotated[str, Form(max_length=10)],
              team: Annotated[str, Form(max_length=20)] = "",
              principal: Principal = requires(P.VIEW_ANALYTICS)) -> Response:  # fmt: skip
    """Recompute what is due and the days shown, then show them again."""
    first, last = chosen_range(since, until)
    inst = instance(request)
    rollup.rollup_now(inst.db, principal.context(client_addr(request)), principal.org_id, since=first, until=last,
                      retention_days=inst.settings.conversation_retention_days,
                      idle_hours=inst.settings.resolution_idle_hours)  # fmt: skip
    return see_other(dashboard_url(first, last, parse_team(team)))


def write_url(title: str) -> str:
    """The knowledge editor's new-article page with the title filled in."""
    return f"{KNOWLEDGE_NEW}?{urlencode({'title': title})}"


@router.get("/gaps")
def gaps_page(request: Request, principal: Principal = requires(P.VIEW_ANALYTICS), since: DayText = "",
              until: DayText = "") -> Response:  # fmt: skip
    first, last = chosen_range(since, until)
    inst = instance(request)
    report = gaps.knowledge_gaps(inst.db, principal.context(client_addr(request)), principal.org_id,
                                 inst.required_embedder, first, last)  # fmt: skip
    may_write = P.EDIT_ARTICLES in principal.permissions or P.MANAGE_KNOWLEDGE_BASE in principal.permissions
    return page(request, "gaps.html", principal, page_name="gaps", org_name=get_org(inst.db, principal.org_id).name,
                report=report, since=first.isoformat(), until=last.isoformat(), may_write=may_write,
                write_url=write_url)  # fmt: skip
