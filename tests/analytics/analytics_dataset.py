"""A seeded month in miniature whose figures are known: ten conversations over three UTC days, played through the
real conversation flow (escalation rules, takeover, agent replies, resolve, CSAT) with a scripted answer engine,
sentiment scorer and topic classifier, and a clock the test sets, so every timestamp is fixed.

    day 1  2030-03-04   C1 ai (4 s, resolved after 300 s, CSAT 5)       C2 ai (6 s, 600 s)
                        C3 complaint rule -> agent A (180 s, 1200 s, CSAT 2)   C4 ai (10 s, 1200 s)
    day 2  2030-03-05   C5 refused -> agent B (5 s; agent after 720 s; 1800 s, CSAT 4)   C6 ai (3 s, 180 s)
                        C7 ai (8 s, 1800 s)      C8 complaint rule -> agent A (360 s, 2400 s)
    day 3  2030-03-06   C9 ai (2 s, 120 s)       C10 ai (7 s), then refused: escalated, open, no agent reply yet
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pytest

from appliance.analytics import reviews
from appliance.answering.types import Answer
from appliance.auth import users
from appliance.conversations import customers, routing
from appliance.conversations.flow import Flow
from appliance.escalation.rules import RuleInput, RulesTriage, create_rule
from appliance.inference.base import Score
from appliance.instance import Instance, cli_context
from tests.conftest import PASSWORD, Seed

D1, D2, D3 = date(2030, 3, 4), date(2030, 3, 5), date(2030, 3, 6)

# question -> (outcome, confidence, refusal reason)
REPLIES: dict[str, tuple[str, int, str]] = {
    "How do I reset my password?": ("answered", 92, ""),
    "When is the clinic open on Sunday?": ("answered", 88, ""),
    "Can I pay my bill in instalments?": ("answered", 72, ""),
    "Do you have parking for visitors?": ("refused", 40, "low_confidence"),
    "How do I book an appointment?": ("answered", 96, ""),
    "Where do I find my test results?": ("answered", 90, ""),
    "How do I cancel my appointment?": ("answered", 86, ""),
    "Is the pharmacy open late?": ("answered", 87, ""),
    "thanks, and on weekends?": ("refused", 20, "no_match"),
}
SENTIMENT = {
    "How do I reset my password?": 60, "When is the clinic open on Sunday?": 50,
    "I want to file a complaint about my bill": 10, "Can I pay my bill in instalments?": 40,
    "Do you have parking for visitors?": 55, "How do I book an appointment?": 70,
    "Where do I find my test results?": 45, "another complaint: my appointment was cancelled": 15,
    "How do I cancel my appointment?": 35, "Is the pharmacy open late?": 65, "thanks, and on weekends?": 80,
}  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2030, 3, 4, tzinfo=UTC)

    def at(self, day: date, hms: str) -> None:
        h, m, s = (int(x) for x in hms.split(":"))
        self.now = datetime(day.year, day.month, day.day, h, m, s, tzinfo=UTC)

    def iso(self) -> str:
        return self.now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ScriptedEngine:
    def answer(self, org_id: int, text: str, previous: list[str], on_delta: Any = None) -> Answer:
        outcome, confidence, reason = REPLIES[text]
        features = {"top_score": confidence / 100, "margin": 0.1}
        provenance = {"features": features, "threshold": 85, "confidence": confidence,
                      "best": {"article_id": None, "version": None, "score": 0.2}}  # fmt: skip
        reply = f"Answer to: {text}" if outcome == "answered" else "I am not sure; a person will help you."
        return Answer(outcome, reply, confidence, [], "extractive", text, text.lower(), 85,  # type: ignore[arg-type]
                      reason, features, provenance)  # fmt: skip


class ScriptedSentiment:
    name = "scripted"
    labels = ("negative", "neutral", "positive")

    def score(self, texts: list[str]) -> list[Score]:
        return [Score("negative" if SENTIMENT[t] < 40 else "neutral", float(SENTIMENT[t])) for t in texts]


def topic_of(org_id: int, text: str) -> str | None:
    lowered = text.lower()
    return "Billing" if "bill" in lowered else "Appointments" if "appointment" in lowered else None


@dataclass
class Dataset:
    org_id: int
    team_id: int
    rule_id: int
    agent_a: int
    agent_b: int
    reviewer: int
    conversations: dict[str, int] = field(default_factory=dict)
    replies: dict[str, list[int]] = field(default_factory=dict)  # conversation -> its AI reply ids
    customer_messages: dict[str, list[int]] = field(default_factory=dict)


def user_id(inst: Instance, email: str) -> int:
    with inst.db.read() as conn:
        return int(conn.execute("SELECT id FROM users WHERE email = ?", (email,)).fetchone()[0])


class Player:
    """Plays conversations through the flow at the clock's times."""

    def __init__(self, inst: Instance, flow: Flow, clock: Clock, data: Dataset) -> None:
        self.inst, self.flow, self.clock, self.data = inst, flow, clock, data
        self.ctx = cli_context(data.org_id)

    def say(self, name: str, at: tuple[date, str], text: str, customer_id: int | None = None,
            reply_at: str | None = None) -> None:  # fmt: skip
        self.clock.at(*at)
        received = self.flow.receive(self.ctx, self.data.org_id, text, sender=f"visitor:{name}",
                                     conversation_id=self.data.conversations.get(name), customer_id=customer_id,
                                     visitor_id=name)  # fmt: skip
        self.data.conversations[name] = received.conversation_id
        self.data.customer_messages.setdefault(name, []).append(received.message_id)
        if reply_at is not None:
            self.clock.at(at[0], reply_at)
            responded = self.flow.respond(self.ctx, self.data.org_id, received)
            assert responded.message_id is not None
            self.data.replies.setdefault(name, []).append(responded.message_id)

    def agent(self, name: str, agent_id: int, day: date, takeover: str, reply: str, resolve: str) -> None:
        conversation = self.data.conversations[name]
        self.clock.at(day, takeover)
        self.flow.takeover(self.ctx, self.data.org_id, conversation, agent_id)
        self.clock.at(day, reply)
        self.flow.agent_reply(self.ctx, self.data.org_id, conversation, agent_id, "Let me look into this for you.")
        self.resolve(name, (day, resolve))

    def resolve(self, name: str, at: tuple[date, str], csat: int | None = None, visitor: bool = False) -> None:
        self.clock.at(*at)
        conversation = self.data.conversations[name]
        self.flow.resolve(self.ctx, self.data.org_id, conversation, name if visitor else None)
        if csat is not None:
            self.flow.csat(self.ctx, self.data.org_id, conversation, name, csat, "")


def _customer(inst: Instance, org_id: int, name: str, value: float) -> int:
    customer_id = customers.upsert_identified(inst.db, org_id, name, f"{name}@patients.example")
    customers.set_lifetime_value(inst.db, org_id, customer_id, value)
    return customer_id


@contextmanager
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    clock = Clock()
    monkeypatch.setattr("appliance.conversations.flow.now_iso", clock.iso)
    yield clock


def build(inst: Instance, seed: Seed, monkeypatch: pytest.MonkeyPatch) -> Dataset:
    org, ctx = seed.north, cli_context(seed.north)
    users.add_user(inst.db, inst.passwords, ctx, org, "b@north.example", PASSWORD, "agent", "Agent B")
    a, b = user_id(inst, Seed.email("agent")), user_id(inst, "b@north.example")
    team = routing.save_team(inst.db, ctx, org, "Complaints desk", [a], {}, "", False)
    rule = create_rule(inst.db, ctx, org, RuleInput("complaints", "keyword", r"\bcomplaint\b", target_team_id=team.id))
    data = Dataset(org, team.id, rule.id, a, b, user_id(inst, Seed.email("support_manager")))
    # One refusal hands over here (max_failed_attempts 1), as the script's C5 and C10 need.
    flow = Flow(inst.db, lambda: ScriptedEngine(), triage=RulesTriage(3, 10),  # type: ignore[arg-type, return-value]
                sentiment=lambda: ScriptedSentiment(), topics=topic_of, max_failed_attempts=1)  # fmt: skip
    low, mid = _customer(inst, org, "lo", 500), _customer(inst, org, "mid", 5_000)
    high, top = _customer(inst, org, "hi", 20_000), _customer(inst, org, "top", 250_000)
    with fixed_clock(monkeypatch) as clock:
        p = Player(inst, flow, clock, data)
        p.say("C1", (D1, "09:00:00"), "How do I reset my password?", reply_at="09:00:04")
        p.resolve("C1", (D1, "09:05:00"), csat=5, visitor=True)
        p.say("C2", (D1, "10:00:00"), "When is the clinic open on Sunday?", low, reply_at="10:00:06")
        p.resolve("C2", (D1, "10:10:00"), visitor=True)
        p.say("C3", (D1, "10:30:00"), "I want to file a complaint about my bill")
        p.agent("C3", a, D1, "10:32:00", "10:33:00", "10:50:00")
        flow.csat(p.ctx, org, data.conversations["C3"], "C3", 2, "slow")
        p.say("C4", (D1, "11:00:00"), "Can I pay my bill in instalments?", mid, reply_at="11:00:10")
        p.resolve("C4", (D1, "11:20:00"), visitor=True)

        p.say("C5", (D2, "09:00:00"), "Do you have parking for visitors?", top, reply_at="09:00:05")
        p.agent("C5", b, D2, "09:10:00", "09:12:05", "09:30:00")
        flow.csat(p.ctx, org, data.conversations["C5"], "C5", 4, "")
        p.say("C6", (D2, "12:00:00"), "How do I book an appointment?", reply_at="12:00:03")
        p.resolve("C6", (D2, "12:03:00"), visitor=True)
        p.say("C7", (D2, "13:00:00"), "Where do I find my test results?", high, reply_at="13:00:08")
        p.resolve("C7", (D2, "13:30:00"), visitor=True)
        p.say("C8", (D2, "15:00:00"), "another complaint: my appointment was cancelled")
        p.agent("C8", a, D2, "15:05:00", "15:06:00", "15:40:00")

        p.say("C9", (D3, "08:00:00"), "How do I cancel my appointment?", reply_at="08:00:02")
        p.resolve("C9", (D3, "08:02:00"), visitor=True)
        p.say("C10", (D3, "09:00:00"), "Is the pharmacy open late?", reply_at="09:00:07")
        p.say("C10", (D3, "09:05:00"), "thanks, and on weekends?", reply_at="09:05:04")
    return data


def review(inst: Instance, data: Dataset) -> None:
    """Five labels: C1, C6 and the C5 refusal correct; C2 (first labelled correct, then replaced) and C4 incorrect.
    C7's label is set and cleared again."""
    ctx = cli_context(data.org_id)

    def label(name: str, verdict: str, reason: str | None = None) -> None:
        reviews.set_review(inst.db, ctx, data.org_id, data.replies[name][0], data.reviewer, verdict, reason)

    label("C1", "correct")
    label("C2", "correct")
    label("C2", "incorrect", "Sunday hours are wrong")
    label("C4", "incorrect", "instalments need a form")
    label("C6", "correct")
    label("C5", "correct")
    label("C7", "correct")
    reviews.clear_review(inst.db, ctx, data.org_id, data.replies["C7"][0])
