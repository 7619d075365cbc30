"""The assistant in the conversation flow, over a real WebSocket against the demo knowledge base with the real
embedder: a confident answer arrives with its sources after the ack; a refusal stays with the assistant; a request
for a person escalates and the customer is told honestly that nobody is online; webhooks for the conversation reach a real receiver, signed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from appliance.inference.embedders import OnnxEmbedder
from appliance.instance import Instance, cli_context
from appliance.knowledge.importers import common, markdown
from appliance.web.app import create_app
from appliance.webhooks import manage, signing
from tests.conftest import PASSWORD, Seed, with_embedder
from tests.conversations.live import frames_until, send, serve
from tests.conversations.live import widget as widget_ws
from tests.webhooks.receiver import Receiver

DEMO = Path(__file__).resolve().parents[2] / "appliance" / "demo_kb" / "articles"


@pytest.fixture
def demo_live(inst: Instance, seed: Seed, onnx_embedder: OnnxEmbedder) -> Iterator[str]:
    with_embedder(inst, onnx_embedder)
    common.apply(inst.db, cli_context(seed.north), seed.north, list(markdown.read_folder(DEMO)), dry_run=False)
    inst.knowledge.indexer.process_pending(seed.north)
    with serve(create_app(inst)) as address:
        yield address


def widget_session(address: str) -> str:
    admin = httpx.Client(base_url=f"http://{address}", timeout=30)
    login = admin.post("/api/auth/login", json={"email": Seed.email("admin"), "password": PASSWORD}).json()
    admin.headers["X-CSRF-Token"] = login["csrf_token"]
    key = admin.post("/api/widget/keys", json={}).json()["public_key"]
    return str(httpx.post(f"http://{address}/api/widget/session", json={"key": key}).json()["session"])


def test_answers_refusals_and_signed_webhooks(demo_live: str, inst: Instance, seed: Seed) -> None:
    receiver = Receiver().start()
    try:
        _, secret = manage.create(inst.db, cli_context(seed.north), seed.north, receiver.url,
                                  ["conversation.created", "message.created", "conversation.escalated"])  # fmt: skip
        widget = widget_ws(demo_live, widget_session(demo_live))
        send(widget, {"type": "message", "client_id": "q1", "text": "How do I reset my portal password?"})
        got = frames_until(widget, lambda f: f["type"] == "message" and f["message"]["role"] == "ai")
        kinds = [f["type"] for f in got]
        assert kinds.index("ack") < kinds.index("message")  # acknowledged (committed) before the reply
        answer = got[-1]["message"]
        assert answer["outcome"] == "answered" and answer["confidence"] >= 85
        assert answer["sources"][0]["title"] == "Resetting a forgotten password"
        assert answer["sources"][0]["url"].startswith("/help/north/articles/")
        streamed = [f for f in got if f["type"] == "delta"]
        assert len(streamed) > 5 and kinds.index("ack") < kinds.index("delta")  # streamed before the stored answer
        assert "".join(f["text"] for f in streamed) == answer["content"]
        assert {f["reply_to"] for f in streamed} == {got[kinds.index("ack")]["message_id"]}
        conversation_id = answer["conversation_id"]
        with inst.db.read() as conn:
            stored = conn.execute("SELECT role, sentiment, sentiment_label FROM messages WHERE conversation_id = ?"
                                  " ORDER BY id", (conversation_id,)).fetchall()  # fmt: skip
        assert [r["role"] for r in stored] == ["customer", "ai"]
        assert stored[0]["sentiment_label"] in ("negative", "neutral", "positive") and stored[0]["sentiment"] is not None

        send(widget, {"type": "message", "client_id": "q2", "conversation_id": conversation_id,
                      "text": "Can I bring my dog to the hospital cafeteria?"})  # fmt: skip
        got = frames_until(widget, lambda f: f["type"] == "message" and f["message"]["role"] == "ai")
        refusal = got[-1]["message"]
        assert refusal["outcome"] == "refused" and refusal["sources"] == []
        assert not any(f["type"] in ("delta", "status") for f in got)  # a refusal is not streamed, nor handed over
        with inst.db.read() as conn:
            row = conn.execute("SELECT status, escalation_reason, bot_turns, failed_attempts FROM conversations"
                               " WHERE id = ?", (conversation_id,)).fetchone()  # fmt: skip
            decisions = conn.execute("SELECT count(*) FROM escalation_decisions WHERE conversation_id = ?",
                                     (conversation_id,)).fetchone()[0]  # fmt: skip
        assert (row["status"], row["bot_turns"], row["failed_attempts"], decisions) == ("active", 2, 1, 0)
        # The customer asks for a person: escalated, told honestly that nobody is online (no agent here).
        send(widget, {"type": "message", "client_id": "q3", "conversation_id": conversation_id,
                      "text": "I want to talk to a person"})  # fmt: skip
        got = frames_until(widget, lambda f: f["type"] == "no_reply")
        ack = next(f for f in got if f["type"] == "ack")
        assert ack["answer"] is True  # the assistant still looks at it (an emergency would get the guidance)
        notice = next(f["message"] for f in got if f["type"] == "message" and f["message"]["outcome"] == "notice")
        assert notice["content"].startswith("Nobody from our team is online right now.")
        assert "shortly" not in notice["content"]
        assert any(f["type"] == "status" and f["status"] == "escalated" for f in got)
        widget.close()
        with inst.db.read() as conn:
            assert conn.execute("SELECT count(*) FROM messages WHERE conversation_id = ? AND role = 'ai'",
                                (conversation_id,)).fetchone()[0] == 3  # the answer, the refusal, the notice  # fmt: skip

        deadline = time.monotonic() + 20
        while len(receiver.requests) < 8 and time.monotonic() < deadline:
            time.sleep(0.05)
        events = [r.headers["x-appliance-event"] for r in receiver.requests]
        assert sorted(events) == sorted(["conversation.created"] + ["message.created"] * 6 + ["conversation.escalated"])
        for request in receiver.requests:
            signing.verify(secret, request.headers["x-appliance-signature"], request.body, now=time.time())
            assert json.loads(request.body)["data"]["conversation_id"] == conversation_id
    finally:
        receiver.stop()
