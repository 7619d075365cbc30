"""Redaction in the conversation flow, on the real database: a card number, an SSN or a CVV a customer or an agent
types is masked before anything stores, scores, classifies, answers or sends it; the message keeps the kinds and
counts, the audit trail says what was masked and never the value; a resend is still recognised, the size limit still
reads the text as typed, and the customer's widget shows the masked text it was acknowledged with."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance.answering.types import Answer
from appliance.auth import orgs
from appliance.config import Settings, load_settings
from appliance.conversations.flow import Flow
from appliance.conversations.widget import create_key
from appliance.errors import ConfigError, PayloadTooLarge
from appliance.inference.base import Score
from appliance.instance import Instance, cli_context, init_instance, open_instance
from appliance.redaction import BULLET, Redactor
from appliance.web.app import create_app
from appliance.webhooks import manage
from tests.conftest import Seed, make_settings
from tests.conversations.live import frames_until, send, serve
from tests.conversations.live import widget as widget_ws

CARD = "4111 1111 1111 1111"
MASKED_CARD = f"{BULLET * 4} {BULLET * 4} {BULLET * 4} 1111"
TYPED = f"My card {CARD} was charged twice and my SSN 123-45-6789 is on the form, CVV 737"
MASKED_SSN = f"{BULLET * 3}-{BULLET * 2}-{BULLET * 4}"
STORED = f"My card {MASKED_CARD} was charged twice and my SSN {MASKED_SSN} is on the form, CVV {BULLET * 3}"
# What of the typed values could show (ids, hashes and timestamps around them may hold any digits by chance).
SECRETS = ("4111 1111", "41111111", "123-45-6789", "SSN 123", "CVV 737")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The installation's settings with the echo responder (the widget test's answer, no model)."""
    return make_settings(tmp_path, chat_responder="echo")


class Recorder:
    """Sentiment, topics and the answer engine in one: each remembers the texts it was given."""

    name = "recorder"
    labels = ("negative", "neutral", "positive")

    def __init__(self) -> None:
        self.seen: dict[str, list[str]] = {"sentiment": [], "topic": [], "answer": []}

    def score(self, texts: Sequence[str]) -> list[Score]:
        self.seen["sentiment"] += texts
        return [Score("neutral", 50.0) for _ in texts]

    def topic(self, org_id: int, text: str) -> str | None:
        self.seen["topic"].append(text)
        return "Billing"

    def answer(self, org_id: int, text: str, previous: list[str], on_delta: Any = None) -> Answer:
        self.seen["answer"].append(text)
        return Answer("answered", "We have refunded the second charge.", 95, [], "extractive", text, text, 85)


def recording_flow(inst: Instance, recorder: Recorder, **kwargs: Any) -> Flow:
    engine: Any = recorder
    return Flow(inst.db, lambda: engine, sentiment=lambda: recorder, topics=recorder.topic, redactor=inst.redactor,
                **kwargs)  # fmt: skip


def redaction_events(inst: Instance) -> list[dict[str, Any]]:
    with inst.db.read() as conn:
        rows = conn.execute("SELECT target, details FROM audit_events WHERE action = 'conversation.message_redacted'"
                            " ORDER BY id").fetchall()  # fmt: skip
    return [{"target": r["target"], **json.loads(r["details"])} for r in rows]


def test_a_customer_message_is_masked_before_it_is_stored_scored_answered_or_sent(inst: Instance, seed: Seed) -> None:
    ctx, recorder = cli_context(seed.north), Recorder()
    manage.create(inst.db, ctx, seed.north, "http://127.0.0.1:9/hook", ["message.created"])
    received, responded = recording_flow(inst, recorder).ask(ctx, seed.north, TYPED, sender="visitor:v", visitor_id="v",
                                                             client_id="c-1")  # fmt: skip
    assert received.text == STORED
    assert recorder.seen == {"sentiment": [STORED], "topic": [STORED], "answer": [STORED]}
    with inst.db.read() as conn:
        row = conn.execute("SELECT content, query, redactions FROM messages WHERE id = ?",
                           (received.message_id,)).fetchone()  # fmt: skip
        payloads = [r[0] for r in conn.execute("SELECT payload FROM webhook_deliveries ORDER BY id")]
        audit_text = " ".join(r[0] for r in conn.execute("SELECT details FROM audit_events"))
    assert (row["content"], row["query"]) == (STORED, STORED)
    assert json.loads(row["redactions"]) == {"pan": 1, "us_ssn": 1, "cvv": 1}
    assert len(payloads) == 2  # the customer's message and the answer
    customer = json.loads(payloads[0])["data"]["message"]
    assert customer["content"] == STORED and customer["role"] == "customer"
    frames = [e.frame for e in received.events if e.frame.get("type") == "message"]
    assert frames and all(f["message"]["content"] == STORED for f in frames)
    for text in (*payloads, audit_text):
        assert not any(secret in text for secret in SECRETS)
    assert redaction_events(inst) == [{"target": f"message:{received.message_id}", "conversation_id":
                                       received.conversation_id, "message_id": received.message_id,
                                       "role": "customer", "counts": {"pan": 1, "us_ssn": 1, "cvv": 1}}]  # fmt: skip
    assert not re.search(r"\d{3}", json.dumps(redaction_events(inst)[0]["counts"]))
    assert responded.answer is not None and responded.answer.question == STORED


def test_an_agent_pasting_a_card_number_is_masked_too(inst: Instance, seed: Seed) -> None:
    ctx, flow = cli_context(seed.north), recording_flow(inst, Recorder())
    received = flow.receive(ctx, seed.north, "I need help with a payment", sender="visitor:v", visitor_id="v")
    with inst.db.read() as conn:
        agent = int(conn.execute("SELECT id FROM users WHERE email = ?", (Seed.email("agent"),)).fetchone()[0])
    flow.takeover(ctx, seed.north, received.conversation_id, agent)
    conversation_id = received.conversation_id
    message_id, duplicate, events = flow.agent_reply(ctx, seed.north, conversation_id, agent,
                                                     f"Is it the card {CARD.replace(' ', '')}?", client_id="a-1")
    assert not duplicate
    with inst.db.read() as conn:
        row = conn.execute("SELECT content, redactions FROM messages WHERE id = ?", (message_id,)).fetchone()
    assert (row["content"], json.loads(row["redactions"])) == (f"Is it the card {MASKED_CARD}?", {"pan": 1})
    assert all(e.frame["message"]["content"] == row["content"] for e in events if e.frame.get("type") == "message")
    assert [(e["role"], e["counts"]) for e in redaction_events(inst)] == [("agent", {"pan": 1})]
    again = flow.agent_reply(ctx, seed.north, conversation_id, agent, f"Is it the card {CARD}?", client_id="a-1")
    assert again[:2] == (message_id, True)


def test_a_resend_is_recognised_and_the_size_limit_reads_the_text_as_typed(inst: Instance, seed: Seed) -> None:
    ctx, flow = cli_context(seed.north), recording_flow(inst, Recorder(), max_message_bytes=256, responder="echo")
    first = flow.receive(ctx, seed.north, TYPED, sender="visitor:v", visitor_id="v", client_id="c-1")
    again = flow.receive(ctx, seed.north, TYPED, sender="visitor:v", visitor_id="v", client_id="c-1",
                         conversation_id=first.conversation_id)  # fmt: skip
    assert (again.duplicate, again.message_id, again.text) == (True, first.message_id, STORED)
    # Bullets take three bytes each: a message that fits as typed is taken even when its masked form would not.
    cards = ", ".join([CARD] * 12)
    assert len(cards.encode()) <= 256 < len(Redactor().redact(cards).text.encode())
    taken = flow.receive(ctx, seed.north, cards, sender="visitor:v", visitor_id="v",
                         conversation_id=first.conversation_id)  # fmt: skip
    assert taken.text.count(MASKED_CARD) == 12
    with pytest.raises(PayloadTooLarge):
        flow.receive(ctx, seed.north, "x" * 257, sender="visitor:v", visitor_id="v")
    with inst.db.read() as conn:
        assert conn.execute("SELECT count(*) FROM messages WHERE role = 'customer'").fetchone()[0] == 2
    assert len(redaction_events(inst)) == 2


def test_with_no_kinds_nothing_is_masked(tmp_path: Path) -> None:
    off = init_instance(make_settings(tmp_path / "off", redact_kinds=[]), cli_context())
    try:
        assert off.redactor.kinds == ()
        org, recorder = orgs.create_org(off.db, cli_context(), "north", "North Clinic").id, Recorder()
        received = recording_flow(off, recorder).receive(cli_context(org), org, TYPED, sender="v", visitor_id="v")
        with off.db.read() as conn:
            row = conn.execute("SELECT content, redactions FROM messages WHERE id = ?",
                               (received.message_id,)).fetchone()  # fmt: skip
        assert (row["content"], row["redactions"], recorder.seen["sentiment"]) == (TYPED, None, [TYPED])
        assert redaction_events(off) == []
    finally:
        off.close()


def test_the_setting_is_read_and_an_unknown_kind_stops_the_installation(
    tmp_path: Path, inst: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:  # fmt: skip
    assert inst.redactor.kinds == ("pan", "iban", "us_ssn", "cvv", "nhs_number", "mrn")
    monkeypatch.setenv("APPLIANCE_REDACT_KINDS", "pan, email")
    assert load_settings(data_dir=tmp_path).redact_kinds == ["pan", "email"]
    monkeypatch.setenv("APPLIANCE_REDACT_KINDS", "")
    assert load_settings(data_dir=tmp_path).redact_kinds == []
    bad = Settings(data_dir=inst.settings.data_dir, redact_kinds=["pan", "phone"])
    with pytest.raises(ConfigError, match="redact_kinds: unknown kind phone"):
        open_instance(bad)
    with pytest.raises(ConfigError, match="unknown kind phone"):
        init_instance(make_settings(tmp_path / "new", redact_kinds=["phone"]), cli_context())
    assert not (tmp_path / "new" / "data").exists()


def test_the_widget_is_acknowledged_with_the_masked_text(inst: Instance, seed: Seed) -> None:
    key, _ = create_key(inst.db, cli_context(seed.north), seed.north)
    with serve(create_app(inst)) as address:
        session = httpx.post(f"http://{address}/api/widget/session", json={"key": key.public_key}).json()["session"]
        conn = widget_ws(address, session)
        send(conn, {"type": "message", "client_id": "c-1", "text": TYPED})
        frames = frames_until(conn, lambda f: f["type"] == "message" and f["message"]["role"] == "ai")
        conn.close()
    ack = next(f for f in frames if f["type"] == "ack")
    assert ack["text"] == STORED
    shown = [f["message"]["content"] for f in frames if f["type"] == "message"]
    assert shown == [STORED, STORED]  # the customer's message, and the echo that stands in for the answer
    assert not any(secret in json.dumps(frames) for secret in SECRETS)
