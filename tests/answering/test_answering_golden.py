"""Golden questions and the publish gate, through the API as editors and admins use it, on the demo help centre with
the real embedder: a change that breaks a golden question is blocked and leaves nothing behind; an admin may
override, and that is audited; harmless changes go through."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.inference.embedders import OnnxEmbedder
from appliance.instance import Instance, cli_context
from appliance.knowledge import articles
from appliance.knowledge.importers import common, markdown
from tests.conftest import Seed, client_for, with_embedder

DEMO = Path(__file__).resolve().parents[2] / "appliance" / "demo_kb" / "articles"
RESET = "How do I reset my portal password?"
DOG = "Can I bring my dog to the hospital cafeteria?"


@pytest.fixture
def demo(inst: Instance, seed: Seed, onnx_embedder: OnnxEmbedder) -> Iterator[Instance]:
    with_embedder(inst, onnx_embedder)
    common.apply(inst.db, cli_context(seed.north), seed.north, list(markdown.read_folder(DEMO)), dry_run=False)
    inst.knowledge.indexer.process_pending(seed.north)
    yield inst


def reset_article(inst: Instance, org_id: int) -> int:
    with inst.db.read() as conn:
        row = conn.execute("SELECT id FROM articles WHERE org_id = ? AND external_id = 'rc-portal-password-reset'",
                           (org_id,)).fetchone()  # fmt: skip
    return int(row[0])


def gate_events(inst: Instance) -> list[dict[str, object]]:
    compliance = client_for(inst, Seed.email("compliance_officer"))
    return compliance.get("/api/audit/events", params={"action": "article.publish_gate"}).json()


def test_a_change_that_breaks_a_golden_question_is_blocked_and_leaves_nothing(demo: Instance, seed: Seed) -> None:
    editor = client_for(demo, Seed.email("knowledge_editor"))
    article_id = reset_article(demo, seed.north)
    added = editor.post("/api/knowledge/golden", json={"question": RESET, "expected_article_id": article_id})
    assert added.status_code == 201, added.text
    assert editor.post("/api/knowledge/golden", json={"question": RESET}).status_code == 409  # one of each
    assert editor.get("/api/knowledge/golden/run").json()["passed"] is True
    with demo.db.read() as conn:
        generation = conn.execute("SELECT generation FROM index_state WHERE org_id = ?", (seed.north,)).fetchone()[0]
        outbox = conn.execute("SELECT count(*) FROM index_outbox").fetchone()[0]

    blocked = editor.post(f"/api/knowledge/{article_id}/status", json={"status": "archived"})
    assert blocked.status_code == 409, blocked.text
    body = blocked.json()
    assert body["code"] == "publish_blocked" and "an admin may override" in body["message"]
    assert [r["question"] for r in body["details"]["regressions"]] == [RESET]
    assert body["details"]["regressions"][0]["got_article_id"] != article_id
    # nothing of the staged change stayed: status, index generation, outbox, and no staging folder
    assert articles.get_article(demo.db, seed.north, article_id).status == "published"
    with demo.db.read() as conn:
        assert conn.execute("SELECT generation FROM index_state WHERE org_id = ?", (seed.north,)).fetchone()[0] == generation
        assert conn.execute("SELECT count(*) FROM index_outbox").fetchone()[0] == outbox
    assert not any(p.name.startswith("staged-") for p in demo.paths.index.iterdir())
    assert demo.answers.answer(seed.north, RESET, use_cache=False).sources[0].article_id == article_id

    # an editor cannot override; an admin can, and the override is audited
    assert editor.post(f"/api/knowledge/{article_id}/status", json={"status": "archived", "override": True}).status_code == 409
    admin = client_for(demo, Seed.email("admin"))
    done = admin.post(f"/api/knowledge/{article_id}/status", json={"status": "archived", "override": True})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "archived" and done.json()["golden"]["passed"] is False
    events = gate_events(demo)
    assert [(e["outcome"], e["details"]["overridden"]) for e in events] == [("success", True), ("denied", False), ("denied", False)]


def test_harmless_changes_pass_and_must_refuse_questions_are_guarded(demo: Instance, seed: Seed) -> None:
    editor = client_for(demo, Seed.email("knowledge_editor"))
    assert editor.post("/api/knowledge/golden", json={"question": DOG}).status_code == 201  # must refuse
    harmless = editor.post("/api/knowledge", json={"title": "Lost property", "content":
                           "Items found on our premises are kept at the main reception for 30 days."}).json()  # fmt: skip
    ok = editor.post(f"/api/knowledge/{harmless['id']}/status", json={"status": "published"})
    assert ok.status_code == 200 and ok.json()["golden"]["passed"] is True
    # an article that makes the must-refuse question answerable is a regression
    dogs = editor.post("/api/knowledge", json={"title": "Dogs in the hospital cafeteria", "content":
                       "You can bring your dog to the hospital cafeteria. Dogs in the hospital cafeteria must stay "
                       "on a lead, and assistance dogs are welcome everywhere."}).json()  # fmt: skip
    blocked = editor.post(f"/api/knowledge/{dogs['id']}/status", json={"status": "published"})
    assert blocked.status_code == 409, blocked.text
    assert blocked.json()["details"]["regressions"][0]["outcome"] == "answered"
    assert articles.get_article(demo.db, seed.north, dogs["id"]).status == "draft"
    # removing the golden question lets it through; deleting another org's question is a 404
    golden_id = editor.get("/api/knowledge/golden").json()[0]["id"]
    south = client_for(demo, Seed.email("knowledge_editor", "south"))
    assert south.delete(f"/api/knowledge/golden/{golden_id}").status_code == 404
    assert editor.delete(f"/api/knowledge/golden/{golden_id}").status_code == 204
    assert editor.post(f"/api/knowledge/{dogs['id']}/status", json={"status": "published"}).status_code == 200
    # a golden question must name an article of the organisation
    assert editor.post("/api/knowledge/golden", json={"question": "x", "expected_article_id": 999999}).status_code == 404
