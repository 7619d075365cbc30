"""The analytics routes as the console calls them: the dashboard after "recompute now", bad ranges and other
organisations' teams refused; reviews set, replaced, listed, exported and cleared, with bad ones refused and nothing
changed; CSRF on every change; and who may do what."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from appliance.inference.embedders import OnnxEmbedder
from appliance.instance import Instance
from appliance.web.app import create_app
from tests.analytics.analytics_dataset import Dataset, build
from tests.conftest import Seed, client_for, login, make_client, with_embedder

RANGE = {"since": "2030-03-04", "until": "2030-03-06"}


@pytest.fixture
def data(inst: Instance, seed: Seed, monkeypatch: pytest.MonkeyPatch) -> Dataset:
    return build(inst, seed, monkeypatch)


@pytest.fixture
def manager(inst: Instance, data: Dataset) -> TestClient:
    return client_for(inst, Seed.email("support_manager"))


def _labels(inst: Instance) -> list[tuple[int, str]]:
    with inst.db.read() as conn:
        return [(r[0], r[1]) for r in conn.execute("SELECT message_id, verdict FROM answer_reviews ORDER BY id")]


def test_the_dashboard_after_recompute_now(inst: Instance, seed: Seed, data: Dataset, manager: TestClient) -> None:
    done = manager.post("/api/analytics/rollup", json=RANGE)
    assert done.status_code == 200, done.text
    assert {"2030-03-04", "2030-03-05", "2030-03-06"} <= set(done.json()["days"])
    got = manager.get("/api/analytics/dashboard", params=RANGE)
    assert got.status_code == 200, got.text
    d = got.json()
    assert [v["conversations"] for v in d["volume"]] == [4, 4, 2]
    assert (d["resolution"]["ai_resolved"], d["resolution"]["agent_resolved"], d["resolution"]["open"]) == (6, 3, 1)
    assert d["first_response"] == {"count": 10, "median_s": 6.5, "p90_s": 180.0}
    assert d["escalation"]["reasons"][0] == {"trigger_type": "keyword", "rule_id": data.rule_id,
                                             "rule_name": "complaints", "count": 2}  # fmt: skip
    assert d["rolled_up_at"] == done.json()["rolled_up_at"]
    team = manager.get("/api/analytics/dashboard", params={**RANGE, "team_id": data.team_id}).json()
    assert team["resolution"]["conversations"] == 2
    assert len(manager.get("/api/analytics/dashboard").json()["volume"]) == 30  # the last 30 days by default


def test_bad_ranges_and_other_teams_are_refused(inst: Instance, seed: Seed, data: Dataset, manager: TestClient) -> None:
    for params in ({"since": "2030-03-06", "until": "2030-03-04"}, {"since": "2029-03-03", "until": "2030-03-04"},
                   {"since": "2030-02-30"}):  # reversed, 367 days, no such day
        response = manager.get("/api/analytics/dashboard", params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["code"] in ("invalid", "invalid_request")
        assert manager.get("/api/analytics/knowledge-gaps", params=params).status_code == 422
    assert manager.get("/api/analytics/dashboard", params={"team_id": 0}).status_code == 422
    south = client_for(inst, Seed.email("support_manager", "south"))
    assert south.get("/api/analytics/dashboard", params={"team_id": data.team_id}).status_code == 404
    assert manager.post("/api/analytics/rollup", json={"since": "2030-03-04"}).status_code == 422
    with inst.db.read() as conn:
        assert conn.execute("SELECT count(*) FROM analytics_daily").fetchone()[0] == 0


def test_reviews_set_replaced_listed_exported_and_cleared(inst: Instance, data: Dataset, manager: TestClient) -> None:
    answer = data.replies["C2"][0]
    url = f"/api/messages/{answer}/review"
    assert manager.put(url, json={"verdict": "correct"}).status_code == 200
    replaced = manager.put(url, json={"verdict": "incorrect", "reason": "Sunday hours are wrong"})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["verdict"] == "incorrect" and replaced.json()["reviewer"] == "support_manager of north"
    assert _labels(inst) == [(answer, "incorrect")]

    listed = manager.get("/api/reviews", params={"verdict": "incorrect"})
    assert listed.status_code == 200 and [i["message_id"] for i in listed.json()] == [answer]
    assert listed.json()[0]["question"] == "When is the clinic open on Sunday?"
    assert len(manager.get("/api/reviews", params={"unreviewed": "true"}).json()) == 8
    assert manager.get("/api/reviews", params={"band": "nope"}).status_code == 422

    exported = manager.get("/api/reviews/export", params=RANGE)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("application/x-ndjson")
    [line] = exported.text.splitlines()
    assert json.loads(line)["reason"] == "Sunday hours are wrong" and json.loads(line)["message_id"] == answer

    assert manager.delete(url).status_code == 204
    assert manager.delete(url).status_code == 404
    assert _labels(inst) == []
    with inst.db.read() as conn:
        actions = [r[0] for r in conn.execute("SELECT action FROM audit_events WHERE action LIKE 'answer.review%'"
                                              " OR action LIKE 'analytics.%' ORDER BY id")]  # fmt: skip
    assert actions == ["answer.reviewed", "answer.reviewed", "analytics.reviews_read", "analytics.reviews_read",
                       "analytics.reviews_exported", "answer.review_cleared"]  # fmt: skip


def test_bad_reviews_are_refused_and_change_nothing(inst: Instance, seed: Seed, data: Dataset,
                                                    manager: TestClient) -> None:  # fmt: skip
    answer = data.replies["C4"][0]
    for message_id, body, status in (
        (answer, {"verdict": "incorrect"}, 422),
        (answer, {"verdict": "incorrect", "reason": " "}, 422),
        (answer, {"verdict": "incorrect", "reason": "x" * 1001}, 422),
        (answer, {"verdict": "maybe"}, 422),
        (answer, {"verdict": "correct", "note": "extra"}, 422),
        (data.customer_messages["C4"][0], {"verdict": "correct"}, 422),  # not an AI answer
        (999999, {"verdict": "correct"}, 404),
    ):
        response = manager.put(f"/api/messages/{message_id}/review", json=body)
        assert response.status_code == status, (body, response.text)
    south = client_for(inst, Seed.email("support_manager", "south"))
    assert south.put(f"/api/messages/{answer}/review", json={"verdict": "correct"}).status_code == 404
    assert south.delete(f"/api/messages/{answer}/review").status_code == 404
    assert _labels(inst) == []
    with inst.db.read() as conn:
        assert conn.execute("SELECT count(*) FROM audit_events WHERE action = 'answer.reviewed'").fetchone()[0] == 0


def test_changes_need_the_csrf_token(inst: Instance, data: Dataset, manager: TestClient) -> None:
    answer = data.replies["C1"][0]
    bare = make_client(create_app(inst))
    login(bare, Seed.email("support_manager"))  # signed in, but sends no X-CSRF-Token
    for method, path, body in (("PUT", f"/api/messages/{answer}/review", {"verdict": "correct"}),
                               ("POST", "/api/analytics/rollup", {})):  # fmt: skip
        response = bare.request(method, path, json=body)
        assert response.status_code == 403 and response.json()["code"] == "csrf_failed"
    assert _labels(inst) == []
    assert manager.put(f"/api/messages/{answer}/review", json={"verdict": "correct"}).status_code == 200
    assert bare.delete(f"/api/messages/{answer}/review").json()["code"] == "csrf_failed"
    assert _labels(inst) == [(answer, "correct")]
    assert bare.get("/api/analytics/dashboard").status_code == 200  # reads need no token
    with inst.db.read() as conn:
        assert conn.execute("SELECT count(*) FROM analytics_state").fetchone()[0] == 0


@pytest.mark.parametrize("role,dashboard,review", [
    ("admin", 200, 403), ("support_manager", 200, 200), ("agent", 403, 403), ("knowledge_editor", 403, 403),
    ("compliance_officer", 403, 403),
])  # fmt: skip
def test_who_may_do_what(inst: Instance, data: Dataset, role: str, dashboard: int, review: int) -> None:
    client = client_for(inst, Seed.email(role))
    assert client.get("/api/analytics/dashboard").status_code == dashboard
    assert client.get("/api/analytics/knowledge-gaps").status_code == dashboard
    assert client.post("/api/analytics/rollup").status_code == dashboard
    answer = data.replies["C6"][0]
    assert client.put(f"/api/messages/{answer}/review", json={"verdict": "correct"}).status_code == review
    assert client.get("/api/reviews").status_code == review
    assert client.get("/api/reviews/export").status_code == review


def test_knowledge_gaps_through_the_api(inst: Instance, data: Dataset, manager: TestClient,
                                        onnx_embedder: OnnxEmbedder) -> None:  # fmt: skip
    with_embedder(inst, onnx_embedder)
    got = manager.get("/api/analytics/knowledge-gaps", params=RANGE)
    assert got.status_code == 200, got.text
    report = got.json()
    # The two refusals recorded as gaps (C5 low confidence, C10 no match) are unrelated questions.
    assert report["gaps"] == 2 and [c["count"] for c in report["clusters"]] == [1, 1]
    assert {c["suggested_title"] for c in report["clusters"]} == {"Do you have parking for visitors?",
                                                                 "thanks, and on weekends?"}  # fmt: skip
    with inst.db.read() as conn:
        assert conn.execute("SELECT actor FROM audit_events WHERE action = 'analytics.gaps_read'").fetchone()[0] \
            .startswith("user:")
