"""Topics with the real embedder: trained from the organisation's examples through the API, each conversation gets
its topic from its first message (or none when out of scope), and a topic routes the escalation to its team."""

from __future__ import annotations

from appliance.conversations import routing
from appliance.escalation.rules import RuleInput, create_rule
from appliance.inference.embedders import OnnxEmbedder
from appliance.instance import Instance, cli_context
from tests.conftest import Seed, client_for, with_embedder

TOPICS = {
    "Billing": ["Why was I charged twice?", "I need a copy of my invoice", "How do I pay my bill online?",
                "My payment did not go through", "Can I get a refund for an overcharge?", "Where do I see my balance?"],
    "Appointments": ["How do I book an appointment?", "I want to reschedule my visit", "Can I cancel my appointment?",
                     "What times are available next week?", "I missed my appointment", "Book me in with Dr Lee"],
    "Portal access": ["I forgot my password", "I cannot log in to the portal", "My account is locked",
                      "How do I reset my password?", "The login page shows an error", "I did not get the sign-in code"],
}  # fmt: skip


def test_topics_are_trained_assigned_and_route_escalations(inst: Instance, seed: Seed, onnx_embedder: OnnxEmbedder) -> None:
    with_embedder(inst, onnx_embedder)
    ctx = cli_context(seed.north)
    billing_team = routing.save_team(inst.db, ctx, seed.north, "Billing desk", [], {}, "", False)
    manager = client_for(inst, Seed.email("support_manager"))
    assert manager.post("/api/topics/train").status_code == 422  # fewer than two topics
    for name, examples in TOPICS.items():
        body = {"name": name, "examples": examples, "team_id": billing_team.id if name == "Billing" else None}
        assert manager.post("/api/topics", json=body).status_code == 201
    assert manager.post("/api/topics", json={"name": "Thin", "examples": ["one"]}).status_code == 422
    assert manager.post("/api/topics", json={"name": "x", "examples": ["a", "b", "c"], "team_id": 9999}).status_code == 422
    trained = manager.post("/api/topics/train")
    assert trained.status_code == 200 and trained.json()["topics"] == 3 and trained.json()["examples"] == 18
    assert manager.get("/api/topics").json()["training"]["version"] == trained.json()["version"]

    create_rule(inst.db, ctx, seed.north, RuleInput("billing tag", "topic", "Billing", "tag", tag="billing"))
    cases = {"I was charged two times this month, please fix it": "Billing",
             "Could I move my appointment to Friday?": "Appointments",
             "The portal says my password is wrong": "Portal access",
             "What is the capital of Australia?": None}  # fmt: skip
    for text, expected in cases.items():
        received = inst.flow.receive(ctx, seed.north, text, sender="visitor:t", visitor_id="t")
        with inst.db.read() as conn:
            row = conn.execute("SELECT topic, tags FROM conversations WHERE id = ?", (received.conversation_id,)).fetchone()
        assert row["topic"] == expected, text
        assert (row["tags"] == '["billing"]') == (expected == "Billing")
    # The topic's team receives the escalation.
    received = inst.flow.receive(ctx, seed.north, "I was charged twice, let me talk to a human", sender="visitor:u",
                                 visitor_id="u")  # fmt: skip
    with inst.db.read() as conn:
        row = conn.execute("SELECT status, team_id FROM conversations WHERE id = ?", (received.conversation_id,)).fetchone()
    assert (row["status"], row["team_id"]) == ("escalated", billing_team.id)
