"""The analytics, knowledge-gap and review pages through the app in-process, on the seeded days of
tests/analytics/analytics_dataset.py: every figure the dashboard shows (cards, tables and the charts' data block) is
the one analytics.dashboard() gives, and the known answers of the data set; one team's figures and the htmx
fragment; bad ranges refused; "Recompute now" audited; gaps clustered with the real embedder, with "Write an article"
for those who may; answers marked through the page land in answer_reviews and are audited, in place with htmx; and
roles without the permission are refused."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest

from appliance.analytics.dashboard import dashboard
from appliance.analytics.rollup import rollup_days
from appliance.auth.roles import ROLE_PERMISSIONS, Permission, Role
from appliance.console.analytics import charts
from appliance.inference.embedders import OnnxEmbedder
from appliance.instance import Instance
from tests.analytics.analytics_dataset import D1, D2, D3, Dataset, build, review
from tests.analytics.test_analytics_gaps import FLU, PARKING, _article, _gap
from tests.conftest import ROLES, Seed, login, with_embedder
from tests.console.test_console_pages import console, secured

P = Permission
RANGE = {"since": D1.isoformat(), "until": D3.isoformat()}
HTMX = {"HX-Request": "true"}


@pytest.fixture
def data(inst: Instance, seed: Seed, monkeypatch: pytest.MonkeyPatch) -> Dataset:
    built = build(inst, seed, monkeypatch)
    review(inst, built)
    rollup_days(inst.db, seed.north, [D1, D2, D3])
    return built


def _text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def table(page: str, table_id: str) -> list[list[str]]:
    """The body rows of a table, each cell's text."""
    found = re.search(rf'<table id="{table_id}">(.*?)</table>', page, re.S)
    assert found is not None, f"no table {table_id}"
    body = found.group(1).split("<tbody>", 1)[1]
    return [[_text(c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]  # fmt: skip


def figure(page: str, name: str) -> str:
    found = re.search(rf'data-figure="{name}">([^<]*)<', page)
    assert found is not None, f"no figure {name}"
    return html.unescape(found.group(1))


def chart_data(page: str) -> dict[str, Any]:
    found = re.search(r"<div id=\"dashboard-charts\" hidden data-charts='([^']*)'></div>", page)
    assert found is not None
    parsed: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return parsed


def _audited(inst: Instance, action: str) -> list[dict[str, Any]]:
    with inst.db.read() as conn:
        return [json.loads(r[0]) for r in conn.execute("SELECT details FROM audit_events WHERE action = ? ORDER BY id",
                                                       (action,))]  # fmt: skip


def test_the_dashboard_shows_the_figures_of_the_seeded_days(inst: Instance, data: Dataset) -> None:
    manager, _ = console(inst, "support_manager")
    response = secured(manager.get("/console/analytics", params=RANGE))
    assert response.status_code == 200, response.text
    page, d = response.text, dashboard(inst.db, data.org_id, D1, D3)
    # Known answers of the data set (worked out in tests/analytics/test_analytics_dashboard.py).
    assert (figure(page, "conversations"), figure(page, "resolution-rate")) == ("10", "90.0%")
    assert (figure(page, "ai-share"), figure(page, "agent-share")) == ("66.7%", "33.3%")
    assert (figure(page, "escalation-rate"), figure(page, "csat-average")) == ("40.0%", "3.67")
    assert (figure(page, "sentiment-average"), figure(page, "accuracy")) == ("47.7", "60.0%")
    assert table(page, "table-resolution")[:4] == [
        ["Resolved by the assistant", "6", "66.7%"], ["Resolved by agents", "3", "33.3%"],
        ["Resolved otherwise", "0", ""], ["Still open", "1", ""]]  # fmt: skip
    assert table(page, "table-times") == [["First response", "10", "6.5 s", "3 min"],
                                          ["Agent's first reply after escalation", "3", "6 min", "12 min"],
                                          ["Resolution", "9", "20 min", "40 min"]]  # fmt: skip
    assert table(page, "table-reasons") == [["Keyword", "complaints", "2"], ["Repeated failure", "built in", "2"]]
    # Every row of every table is the dashboard's own figure.
    assert table(page, "table-volume") == [[v.day, str(v.conversations), str(v.customer_messages)] for v in d.volume]
    assert table(page, "table-csat") == [[k, str(v)] for k, v in d.csat.distribution.items()]
    assert table(page, "table-sentiment-days") == [[g.key, f"{g.average:.1f}", str(g.count)]
                                                   for g in d.sentiment.per_day]  # fmt: skip
    assert [r[0] for r in table(page, "table-sentiment-topics")] == [g.key or "No topic" for g in d.sentiment.by_topic]
    assert [r[2] for r in table(page, "table-sentiment-segments")] == [str(g.count) for g in d.sentiment.by_segment]
    assert [(r[0], r[1], r[2]) for r in table(page, "table-agents")] == [
        (str(a.name), str(a.taken), str(a.resolved)) for a in d.agents]  # fmt: skip
    assert table(page, "table-accuracy") == [
        [b.band, str(b.answers), str(b.reviewed), str(b.correct), str(b.incorrect),
         "–" if b.accuracy is None else f"{b.accuracy * 100:.1f}%"] for b in d.ai_accuracy.by_band]  # fmt: skip
    # The charts draw the same figures.
    drawn = chart_data(page)
    assert drawn == json.loads(json.dumps(charts(d)))
    assert drawn["volume"]["series"][0]["data"] == [4, 4, 2]
    assert drawn["resolution"]["series"][0]["data"] == [6, 3, 0, 1]
    assert len(re.findall(r'<canvas data-chart="[a-z]+"', page)) == len(drawn)
    links = re.findall(r'src="(/console/static/[0-9a-f]{16}/([a-z.]+))" integrity="sha384-', page)
    assert [name for _, name in links] == ["htmx.min.js", "console.js", "chart.umd.min.js", "dashboard.js"]
    assert 'style="' not in page and "<script>" not in page
    assert "Rolled up at <span id=\"rolled-up-at\">never</span>" in page  # rollup_days alone is not a run


def test_one_team_and_the_htmx_fragment(inst: Instance, seed: Seed, data: Dataset) -> None:
    manager, _ = console(inst, "support_manager")
    fragment = secured(manager.get("/console/analytics", params={**RANGE, "team": data.team_id},
                                   headers={**HTMX, "HX-Target": "dashboard-figures"}))  # fmt: skip
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<div id="dashboard-figures"') and "<html" not in fragment.text
    team = dashboard(inst.db, data.org_id, D1, D3, data.team_id)
    assert figure(fragment.text, "conversations") == str(team.resolution.conversations) == "2"
    assert chart_data(fragment.text) == json.loads(json.dumps(charts(team)))
    whole = manager.get("/console/analytics").text  # the last 30 days by default
    assert len(table(whole, "table-volume")) == 30
    assert f'<option value="{data.team_id}">Complaints desk</option>' in whole


@pytest.mark.parametrize("params, status", [({"since": "2030-03-06", "until": "2030-03-04"}, 422),
                                            ({"since": "2029-03-03", "until": "2030-03-04"}, 422),
                                            ({"since": "2030-02-30"}, 422), ({"team": "abc"}, 422),
                                            ({"team": "999999"}, 404)])  # fmt: skip
def test_bad_ranges_and_unknown_teams_are_refused(inst: Instance, data: Dataset, params: dict[str, str],
                                                  status: int) -> None:  # fmt: skip
    manager, _ = console(inst, "support_manager")
    response = secured(manager.get("/console/analytics", params=params))
    assert response.status_code == status and "<html" in response.text


def test_recompute_now_rolls_up_the_days_shown_and_is_audited(inst: Instance, data: Dataset) -> None:
    manager, token = console(inst, "support_manager")
    done = manager.post("/console/analytics/rollup", data={**RANGE, "team": str(data.team_id), "csrf_token": token},
                        follow_redirects=False)  # fmt: skip
    assert done.status_code == 303
    assert done.headers["location"] == f"/console/analytics?since=2030-03-04&until=2030-03-06&team={data.team_id}"
    rolled = _audited(inst, "analytics.rolled_up")
    assert len(rolled) == 1 and {"2030-03-04", "2030-03-05", "2030-03-06"} <= set(rolled[0]["days"])
    page = manager.get(done.headers["location"]).text
    assert 'id="rolled-up-at">never<' not in page and " UTC</span>" in page


def test_knowledge_gaps_in_clusters_with_write_an_article(inst: Instance, seed: Seed,
                                                          onnx_embedder: OnnxEmbedder) -> None:  # fmt: skip
    with_embedder(inst, onnx_embedder)
    with inst.db.write() as conn:
        _article(conn, seed.north, 7, "Visiting the hospital")
        for n, question in enumerate(PARKING):
            _gap(conn, seed.north, question, f"2030-03-0{n + 2}T10:00:00.000000Z", article=7, score=0.2 + n / 100)
        for n, question in enumerate(FLU):
            _gap(conn, seed.north, question, f"2030-03-0{n + 3}T12:00:00.000000Z")
    params = {"since": "2030-03-01", "until": "2030-03-31"}
    admin, _ = console(inst, "admin")
    page = secured(admin.get("/console/analytics/gaps", params=params)).text
    clusters = re.findall(r'<li class="panel gap">(.*?)</li>\s*(?=<li class="panel gap">|</ol>)', page, re.S)
    assert len(clusters) == 2
    parking, flu = clusters
    assert "4 questions" in _text(parking) and "3 questions" in _text(flu)
    assert all(html.escape(q, quote=True) in parking for q in PARKING)
    assert "Visiting the hospital" in parking and "(score 0.23)" in parking
    assert "2030-03-02 10:00 UTC" in parking and "2030-03-05 10:00 UTC" in parking
    title = html.unescape(re.search(r"<h3>(.*?)</h3>", parking).group(1))  # type: ignore[union-attr]
    assert title in PARKING
    link = re.search(r'href="(/console/knowledge/new\?title=[^"]+)"', parking)
    assert link is not None and "Write an article" in parking
    assert html.unescape(link.group(1)) == "/console/knowledge/new?title=" + title.replace(" ", "+").replace(
        "?", "%3F")  # fmt: skip
    assert _audited(inst, "analytics.gaps_read")[-1] == {"since": "2030-03-01", "until": "2030-03-31", "gaps": 7}
    manager, _ = console(inst, "support_manager")  # may read the gaps, may not write articles: no dead link
    page = manager.get("/console/analytics/gaps", params=params).text
    assert "4 questions" in page and "/console/knowledge/new" not in page and "Knowledge editors and admins" in page


def _labels(inst: Instance) -> list[tuple[int, str, str | None, int]]:
    with inst.db.read() as conn:
        return [tuple(r) for r in conn.execute("SELECT message_id, verdict, reason, reviewer_id FROM answer_reviews"
                                               " ORDER BY message_id")]  # fmt: skip


def _row(page: str, message_id: int) -> str:
    found = re.search(rf'<li class="panel review-row[^"]*" id="answer-{message_id}".*?</li>\s*(?=<li|</ol>|$)', page,
                      re.S)  # fmt: skip
    assert found is not None, f"no row for answer {message_id}"
    return found.group(0)


def test_the_review_list_shows_questions_answers_and_filters(inst: Instance, data: Dataset) -> None:
    manager, _ = console(inst, "support_manager")
    page = secured(manager.get("/console/reviews")).text
    rows = re.findall(r'id="answer-(\d+)"', page)
    assert [int(r) for r in rows] == sorted((i for ids in data.replies.values() for i in ids), reverse=True)
    c2 = _row(page, data.replies["C2"][0])
    assert "When is the clinic open on Sunday?" in c2 and "Answer to: When is the clinic open on Sunday?" in c2
    assert "confidence 88/100 (band 85-94)" in c2 and "Marked incorrect" in c2 and "Sunday hours are wrong" in c2
    assert 'href="/api/reviews/export"' in page
    unreviewed = manager.get("/console/reviews", params={"review": "unreviewed"}).text
    reviewed = {data.replies[n][0] for n in ("C1", "C2", "C4", "C5", "C6")}
    assert not reviewed & {int(r) for r in re.findall(r'id="answer-(\d+)"', unreviewed)}
    refused = manager.get("/console/reviews", params={"outcome": "refused", "since": "2030-03-06"},
                          headers={**HTMX, "HX-Target": "review-list"})  # fmt: skip
    assert refused.text.lstrip().startswith('<section id="review-list"')
    assert [int(r) for r in re.findall(r'id="answer-(\d+)"', refused.text)] == [data.replies["C10"][1]]
    assert 'href="/api/reviews/export?since=2030-03-06"' not in refused.text  # the link is on the page, not the list
    read = {"filters": {"unreviewed": False, "outcome": "refused", "since": "2030-03-06", "limit": 50}, "count": 1}
    assert _audited(inst, "analytics.reviews_read")[-1] == read
    assert manager.get("/console/reviews", params={"review": "maybe"}).status_code == 422


def test_a_review_marked_on_the_page_is_stored_and_audited(inst: Instance, data: Dataset) -> None:
    manager, token = console(inst, "support_manager")
    answer = data.replies["C7"][0]
    back = "/console/reviews?review=unreviewed"
    marked = manager.post(f"/console/reviews/{answer}", data={"csrf_token": token, "verdict": "correct",
                                                               "back": back}, follow_redirects=False)  # fmt: skip
    assert marked.status_code == 303 and marked.headers["location"] == f"{back}#answer-{answer}"
    assert (answer, "correct", None, data.reviewer) in _labels(inst)
    assert _audited(inst, "answer.reviewed")[-1] == {"message_id": answer, "verdict": "correct", "previous": None}

    # With htmx the row comes back in place; an incorrect mark without a reason says so and changes nothing.
    before = _labels(inst)
    refused = manager.post(f"/console/reviews/{answer}", data={"csrf_token": token, "verdict": "incorrect"},
                           headers=HTMX)  # fmt: skip
    assert refused.status_code == 200 and "an incorrect verdict needs a reason" in refused.text
    assert refused.text.lstrip().startswith(f'<li class="panel review-row is-correct" id="answer-{answer}"')
    assert _labels(inst) == before
    wrong = manager.post(f"/console/reviews/{answer}", headers=HTMX, data={
        "csrf_token": token, "verdict": "incorrect", "reason": "The results portal moved"})  # fmt: skip
    assert "Marked incorrect" in wrong.text and "The results portal moved" in wrong.text and "<html" not in wrong.text
    assert (answer, "incorrect", "The results portal moved", data.reviewer) in _labels(inst)
    assert _audited(inst, "answer.reviewed")[-1] == {"message_id": answer, "verdict": "incorrect",
                                                     "previous": "correct"}  # fmt: skip
    assert "The results portal moved" not in json.dumps(_audited(inst, "answer.reviewed"))  # reasons stay out

    cleared = manager.post(f"/console/reviews/{answer}/clear", data={"csrf_token": token}, headers=HTMX)
    assert cleared.status_code == 200 and "Not reviewed" in cleared.text
    assert answer not in [m for m, *_ in _labels(inst)]
    assert _audited(inst, "answer.review_cleared")[-1] == {"message_id": answer, "previous": "incorrect"}
    customer = data.customer_messages["C7"][0]
    not_an_answer = manager.post(f"/console/reviews/{customer}", data={"csrf_token": token, "verdict": "correct"})
    assert not_an_answer.status_code == 422 and "not an AI answer" in not_an_answer.text


@pytest.mark.parametrize("role", ROLES)
def test_roles_without_the_permission_are_refused(inst: Instance, data: Dataset, role: str) -> None:
    client, token = console(inst, role)
    held = ROLE_PERMISSIONS[Role(role)]
    answer = data.replies["C1"][0]
    for method, path, needs in (("GET", "/console/analytics", P.VIEW_ANALYTICS),
                                ("GET", "/console/analytics/gaps", P.VIEW_ANALYTICS),
                                ("POST", "/console/analytics/rollup", P.VIEW_ANALYTICS),
                                ("GET", "/console/reviews", P.REVIEW_AI_RESPONSES),
                                ("POST", f"/console/reviews/{answer}", P.REVIEW_AI_RESPONSES),
                                ("POST", f"/console/reviews/{answer}/clear", P.REVIEW_AI_RESPONSES)):  # fmt: skip
        form = {"csrf_token": token, "since": "2030-03-04", "until": "2030-03-06", "verdict": "correct"}
        response = secured(client.request(method, path, data=form if method == "POST" else None,
                                          follow_redirects=False))  # fmt: skip
        if needs in held:
            assert response.status_code in (200, 303), f"{role} got {response.status_code} on {method} {path}"
        else:
            assert response.status_code == 403 and "Not allowed" in response.text, f"{role} on {method} {path}"
    assert _labels(inst)[0][3] == data.reviewer  # nobody refused changed C1's label


def test_the_south_organisation_sees_none_of_norths_answers(inst: Instance, seed: Seed, data: Dataset) -> None:
    south, _ = console(inst)
    token = login(south, Seed.email("support_manager", "south"))
    assert 'id="answer-' not in south.get("/console/reviews").text
    response = south.post(f"/console/reviews/{data.replies['C1'][0]}", data={"csrf_token": token, "verdict": "correct"})
    assert response.status_code == 404
    assert figure(south.get("/console/analytics", params=RANGE).text, "conversations") == "0"
