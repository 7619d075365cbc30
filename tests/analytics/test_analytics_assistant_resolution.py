"""Resolved by the assistant (docs/analytics.md#resolved-by-the-assistant), one conversation per branch of the
definition, played through the real conversation flow with a scripted answer engine that cites a help-centre
article, at times the test sets:

    R1  a cited answer, the customer resolves it, CSAT 5                  resolved
    R2  a cited answer, then "talk to a human" (escalated)                a person took part
    R3  a cited answer with a thumbs-down, resolved                       disliked
    R4  a cited answer, resolved, CSAT 2                                  disliked
    R5  a cited answer, then nothing more from the customer (idle)        resolved once idle_hours have passed
    R6  a cited answer an hour before the rollup                          not ended yet
    R7  only small talk                                                   not counted
    R8  a cited answer, taken over by an agent and released unanswered   a person took part (found in the audit)
    R9  only a refusal                                                    unanswered

Counted: R1-R6, R8 and R9 (8); resolved: R1 and R5, so the rate is 2 / 8 on the API and on the console page."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from appliance.analytics.dashboard import AssistantResolution, dashboard
from appliance.analytics.rollup import conversation_outcome, rollup_days, rollup_due
from appliance.answering.types import Answer, Source
from appliance.config import Settings
from appliance.conversations.flow import Flow
from appliance.escalation.rules import RulesTriage
from appliance.instance import Instance, cli_context
from tests.analytics.analytics_dataset import Clock, fixed_clock, user_id
from tests.conftest import Seed, client_for, make_settings
from tests.console.test_console_analytics_pages import figure, table
from tests.console.test_console_pages import console, secured

ANSWERED = {"How do I reset my password?", "When is the clinic open on Sunday?", "How do I book an appointment?",
            "Where do I find my test results?", "Can I pay my bill in instalments?", "How do I cancel my appointment?",
            "Is the pharmacy open late?"}  # fmt: skip
SMALLTALK = {"hello there", "thanks, bye"}
SOURCE = Source(1, 1, 1, "Your account", "/help/north/articles/1", 1, 0, 40, "Reset your password from the login page.")

EXPECTED = AssistantResolution(counted=8, not_counted=1, resolved=2, person=2, disliked=2, open=1, rate=2 / 8,
                               unanswered=1)


class CitingEngine:
    """Answers the known questions citing one article; greets back; refuses the rest."""

    def answer(self, org_id: int, text: str, previous: list[str], on_delta: Any = None) -> Answer:
        if text in ANSWERED:
            return Answer("answered", f"{text} See the article [1].", 92, [SOURCE], "extractive", text, text, 85)
        if text in SMALLTALK:
            return Answer("smalltalk", "Hello! How can I help?", 100, [], "template", text, text, 85, "greeting")
        return Answer("refused", "I could not find that.", 30, [], "extractive", text, text, 85, "no_match")


@pytest.fixture
def settings(tmp_path: Any, request: pytest.FixtureRequest) -> Settings:
    return make_settings(tmp_path, **getattr(request, "param", {}))


class Customer:
    """The customers' side: a message and the assistant's reply, closing the chat, a rating (only what the flow
    does, so that nothing here escalates on its own)."""

    def __init__(self, flow: Flow, clock: Clock, org_id: int) -> None:
        self.flow, self.clock, self.org_id, self.ctx = flow, clock, org_id, cli_context(org_id)
        self.conversations: dict[str, int] = {}
        self.replies: dict[str, list[int]] = {}

    def say(self, name: str, at: tuple[date, str], text: str, reply_at: str) -> None:
        self.clock.at(*at)
        received = self.flow.receive(self.ctx, self.org_id, text, sender=f"visitor:{name}",
                                     conversation_id=self.conversations.get(name), visitor_id=name)  # fmt: skip
        self.conversations[name] = received.conversation_id
        self.clock.at(at[0], reply_at)
        responded = self.flow.respond(self.ctx, self.org_id, received)
        assert responded.message_id is not None
        self.replies.setdefault(name, []).append(responded.message_id)

    def resolve(self, name: str, at: tuple[date, str], csat: int | None = None) -> None:
        self.clock.at(*at)
        self.flow.resolve(self.ctx, self.org_id, self.conversations[name], name)
        if csat is not None:
            self.flow.csat(self.ctx, self.org_id, self.conversations[name], name, csat, "")


def play(inst: Instance, seed: Seed, monkeypatch: pytest.MonkeyPatch, day: date, recent: datetime) -> Customer:
    """The nine conversations: R1-R5 and R7-R9 on `day`, R6 at `recent`."""
    org = seed.north
    agent = user_id(inst, Seed.email("agent"))
    flow = Flow(inst.db, lambda: CitingEngine(), triage=RulesTriage(3, 10))  # type: ignore[arg-type, return-value]
    ctx = cli_context(org)
    with fixed_clock(monkeypatch) as clock:
        p = data = Customer(flow, clock, org)
        p.say("R1", (day, "09:00:00"), "How do I reset my password?", reply_at="09:00:02")
        p.resolve("R1", (day, "09:05:00"), csat=5)

        p.say("R2", (day, "09:10:00"), "When is the clinic open on Sunday?", reply_at="09:10:02")
        clock.at(day, "09:11:00")
        flow.escalate(ctx, org, data.conversations["R2"], "customer asked", trigger="customer_request",
                      visitor_id="R2")  # fmt: skip

        p.say("R3", (day, "09:20:00"), "How do I book an appointment?", reply_at="09:20:02")
        clock.at(day, "09:21:00")
        flow.feedback(ctx, org, data.replies["R3"][0], "R3", "down")
        p.resolve("R3", (day, "09:22:00"))

        p.say("R4", (day, "09:30:00"), "Where do I find my test results?", reply_at="09:30:02")
        p.resolve("R4", (day, "09:31:00"), csat=2)

        p.say("R5", (day, "10:00:00"), "Can I pay my bill in instalments?", reply_at="10:00:02")

        p.say("R7", (day, "10:30:00"), "hello there", reply_at="10:30:01")
        p.say("R7", (day, "10:31:00"), "thanks, bye", reply_at="10:31:01")
        p.resolve("R7", (day, "10:32:00"))

        p.say("R8", (day, "11:00:00"), "Is the pharmacy open late?", reply_at="11:00:02")
        clock.at(day, "11:01:00")
        flow.takeover(ctx, org, data.conversations["R8"], agent)
        clock.at(day, "11:02:00")
        flow.release(ctx, org, data.conversations["R8"], agent, False)
        p.resolve("R8", (day, "11:03:00"))

        p.say("R9", (day, "11:30:00"), "Can I park my car overnight?", reply_at="11:30:02")
        p.resolve("R9", (day, "11:31:00"))

        at = recent.strftime("%H:%M:%S")
        p.say("R6", (recent.date(), at), "How do I cancel my appointment?", reply_at=at)
    return data


def _outcome(inst: Instance, org_id: int, first: date, last: date) -> AssistantResolution:
    return dashboard(inst.db, org_id, first, last).assistant_resolution


def test_each_branch_of_the_definition(inst: Instance, seed: Seed, monkeypatch: pytest.MonkeyPatch) -> None:
    day = date(2030, 3, 4)
    data = play(inst, seed, monkeypatch, day, datetime(2030, 3, 5, 11, 0, tzinfo=UTC))
    rollup_days(inst.db, seed.north, [day, day + timedelta(days=1)], now=datetime(2030, 3, 5, 12, 0, tzinfo=UTC))
    assert _outcome(inst, seed.north, day, day + timedelta(days=1)) == EXPECTED
    with inst.db.read() as conn:
        each = {name: conversation_outcome(conn, seed.north, conversation, now=datetime(2030, 3, 5, 12, 0, tzinfo=UTC))
                for name, conversation in data.conversations.items()}  # fmt: skip
    assert each == {"R1": "resolved", "R2": "person", "R3": "disliked", "R4": "disliked", "R5": "resolved",
                    "R6": "open", "R7": None, "R8": "person", "R9": "unanswered"}  # fmt: skip
    # R6 alone is on the second day: counted, not ended an hour after its answer.
    assert _outcome(inst, seed.north, day + timedelta(days=1), day + timedelta(days=1)) == AssistantResolution(
        counted=1, not_counted=0, resolved=0, person=0, disliked=0, open=1, rate=0.0)  # fmt: skip
    # 23 hours after R5's question it has not ended yet; the existing figures do not move.
    rollup_days(inst.db, seed.north, [day], now=datetime(2030, 3, 5, 9, 0, tzinfo=UTC))
    first_day = dashboard(inst.db, seed.north, day, day)
    assert (first_day.assistant_resolution.resolved, first_day.assistant_resolution.open) == (1, 1)
    assert (first_day.resolution.conversations, first_day.resolution.resolved) == (8, 6)  # R2 and R5 are open
    assert first_day.escalation.escalated == 1


def test_a_run_counts_conversations_gone_idle_since_the_last(inst: Instance, seed: Seed,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    day = date(2030, 3, 4)
    play(inst, seed, monkeypatch, day, datetime(2030, 3, 4, 23, 30, tzinfo=UTC))
    first = rollup_due(inst.db, seed.north, now=datetime(2030, 3, 5, 9, 0, tzinfo=UTC))
    assert first.days == ["2030-03-04", "2030-03-05"]
    assert (_outcome(inst, seed.north, day, day).resolved, _outcome(inst, seed.north, day, day).open) == (1, 2)
    # Two days on nothing has changed, but R5 and R6 went idle meanwhile: their day is recomputed too.
    later = rollup_due(inst.db, seed.north, now=datetime(2030, 3, 7, 12, 0, tzinfo=UTC))
    assert later.days == ["2030-03-04", "2030-03-06", "2030-03-07"]
    assert _outcome(inst, seed.north, day, day) == AssistantResolution(8, 1, 3, 2, 2, 0, 3 / 8, 1)
    assert rollup_due(inst.db, seed.north, now=datetime(2030, 3, 7, 12, 15, tzinfo=UTC)).days == [
        "2030-03-06", "2030-03-07"]  # fmt: skip


def _played_two_days_ago(inst: Instance, seed: Seed, monkeypatch: pytest.MonkeyPatch) -> tuple[date, date]:
    """Days relative to today, so that "recompute now" (the real clock and the installation's settings) sees R5 idle
    for two days and R6 answered an hour ago."""
    now = datetime.now(UTC).replace(microsecond=0)
    day = now.date() - timedelta(days=2)
    play(inst, seed, monkeypatch, day, now - timedelta(hours=1))
    return day, now.date()


def test_the_rate_on_the_api_and_the_console(inst: Instance, seed: Seed, monkeypatch: pytest.MonkeyPatch) -> None:
    first, last = _played_two_days_ago(inst, seed, monkeypatch)
    params = {"since": first.isoformat(), "until": last.isoformat()}
    manager: TestClient = client_for(inst, Seed.email("support_manager"))
    assert manager.post("/api/analytics/rollup", json=params).status_code == 200
    got = manager.get("/api/analytics/dashboard", params=params)
    assert got.status_code == 200, got.text
    assert got.json()["assistant_resolution"] == {"counted": 8, "not_counted": 1, "resolved": 2, "person": 2,
                                                  "disliked": 2, "open": 1, "rate": 2 / 8,
                                                  "unanswered": 1}  # fmt: skip
    assert got.json()["resolution"]["conversations"] == 9

    browser, _ = console(inst, "support_manager")
    page = secured(browser.get("/console/analytics", params=params)).text
    assert figure(page, "assistant-resolution-rate") == "25.0%"
    assert table(page, "table-assistant-resolution") == [
        ["Resolved by the assistant", "2"], ["A person took part", "2"], ["Thumbs-down or CSAT 1 to 2", "2"],
        ["Only refusals, no person", "1"], ["Not ended yet", "1"],
        ["Not counted (no question for the assistant)", "1"]]  # fmt: skip


@pytest.mark.parametrize("settings", [{"resolution_idle_hours": 72}], indirect=True)
def test_recompute_now_reads_the_idle_setting(inst: Instance, seed: Seed, monkeypatch: pytest.MonkeyPatch) -> None:
    first, last = _played_two_days_ago(inst, seed, monkeypatch)
    params = {"since": first.isoformat(), "until": last.isoformat()}
    manager = client_for(inst, Seed.email("support_manager"))
    assert manager.post("/api/analytics/rollup", json=params).status_code == 200
    figures = manager.get("/api/analytics/dashboard", params=params).json()["assistant_resolution"]
    # R5 has been quiet for two days, less than 72 hours: not ended yet.
    assert (figures["resolved"], figures["open"], figures["rate"]) == (1, 2, 1 / 8)


def test_nothing_counted_gives_no_rate(inst: Instance, seed: Seed) -> None:
    rollup_days(inst.db, seed.north, [date(2030, 3, 4)])
    assert _outcome(inst, seed.north, date(2030, 3, 4), date(2030, 3, 4)) == AssistantResolution(
        0, 0, 0, 0, 0, 0, None)  # fmt: skip
