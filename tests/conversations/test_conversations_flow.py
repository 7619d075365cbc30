"""The conversation flow's rules of the road, on the real database: who sees what, bot-turn and failure limits,
hand back, business hours, least-loaded routing, and the events each step announces."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from appliance.auth import users
from appliance.conversations import routing
from appliance.conversations.flow import Flow
from appliance.conversations.summary import extractive as extractive_summary
from appliance.conversations.views import Viewer, list_conversations
from appliance.errors import Conflict, InvalidValue, NotFound, PayloadTooLarge
from appliance.escalation.rules import RulesTriage
from appliance.instance import Instance, cli_context
from tests.conftest import PASSWORD, Seed


def echo_flow(inst: Instance, max_bot_turns: int = 10) -> Flow:
    """The real flow with the instant echo responder (the assistant's place), so limits are reached quickly."""
    return Flow(inst.db, None, triage=RulesTriage(3, max_bot_turns), responder="echo", max_message_bytes=4096)


def agent_id(inst: Instance, email: str) -> int:
    with inst.db.read() as conn:
        return int(conn.execute("SELECT id FROM users WHERE email = ?", (email,)).fetchone()[0])


def test_the_bot_hands_over_after_max_turns_and_takes_back_after_release(inst: Instance, seed: Seed) -> None:
    flow, ctx = echo_flow(inst, max_bot_turns=3), cli_context(seed.north)
    first, reply = flow.ask(ctx, seed.north, "hello", sender="visitor:v", visitor_id="v")
    assert reply.answer is not None and reply.answer.text == "hello" and reply.status == "active"
    for n in (2, 3):
        _, reply = flow.ask(ctx, seed.north, f"again {n}", sender="visitor:v", visitor_id="v",
                            conversation_id=first.conversation_id)  # fmt: skip
    assert reply.status == "escalated" and reply.decisions[-1].trigger_type == "max_bot_turns"
    received, reply = flow.ask(ctx, seed.north, "anyone?", sender="visitor:v", visitor_id="v",
                               conversation_id=first.conversation_id)  # fmt: skip
    # Waiting for a person, the assistant still answers what it can, saying a person is still coming.
    assert received.answer_needed and reply.answer is not None and reply.status == "escalated"
    assert reply.answer.text.endswith("_Your conversation is still waiting for our team._")
    me = agent_id(inst, Seed.email("agent"))
    events = flow.takeover(ctx, seed.north, first.conversation_id, me)
    assert events[0].frame == {"type": "agent_joined", "conversation_id": first.conversation_id, "agent": "agent of north"}
    assert events[0].channels == (f"visitor:{first.conversation_id}", f"conversation:{first.conversation_id}")
    with pytest.raises(Conflict):
        flow.release(ctx, seed.north, first.conversation_id, agent_id(inst, Seed.email("admin")), any_agent=False)
    flow.release(ctx, seed.north, first.conversation_id, me, any_agent=False)
    _, reply = flow.ask(ctx, seed.north, "back to the bot", sender="visitor:v", visitor_id="v",
                        conversation_id=first.conversation_id)  # fmt: skip
    assert reply.answer is not None and reply.status == "active"  # the counts started afresh


def test_three_thumbs_down_force_a_person(inst: Instance, seed: Seed) -> None:
    flow, ctx = echo_flow(inst), cli_context(seed.north)
    conversation = None
    for n in range(3):
        received, reply = flow.ask(ctx, seed.north, f"question {n}", sender="visitor:v", visitor_id="v",
                                   conversation_id=conversation)  # fmt: skip
        conversation = received.conversation_id
        assert reply.message_id is not None
        flow.feedback(ctx, seed.north, reply.message_id, "v", "down")
        with pytest.raises(NotFound):  # another visitor cannot rate it
            flow.feedback(ctx, seed.north, reply.message_id, "someone-else", "up")
    with inst.db.read() as conn:
        row = conn.execute("SELECT status, failed_attempts FROM conversations WHERE id = ?", (conversation,)).fetchone()
        reason = conn.execute("SELECT trigger_type FROM escalation_decisions WHERE conversation_id = ?",
                              (conversation,)).fetchone()  # fmt: skip
    assert (row["status"], row["failed_attempts"], reason[0]) == ("escalated", 3, "repeated_failure")


def test_routing_picks_the_least_loaded_online_agent_with_room(inst: Instance, seed: Seed) -> None:
    flow, ctx = echo_flow(inst), cli_context(seed.north)
    users.add_user(inst.db, inst.passwords, ctx, seed.north, "b@north.example", PASSWORD, "agent", "B")
    a, b = agent_id(inst, Seed.email("agent")), agent_id(inst, "b@north.example")
    team = routing.save_team(inst.db, ctx, seed.north, "Front desk", [a, b], {}, "", True)
    for user, capacity in ((a, 1), (b, 2)):
        flow.set_availability(ctx, seed.north, user, "online", capacity)
    assigned = []
    for n in range(4):
        received, _ = flow.ask(ctx, seed.north, "talk to a human please", sender=f"visitor:{n}", visitor_id=str(n))
        with inst.db.read() as conn:
            row = conn.execute("SELECT team_id, assigned_agent_id FROM conversations WHERE id = ?",
                               (received.conversation_id,)).fetchone()  # fmt: skip
        assert row["team_id"] == team.id
        assigned.append(row["assigned_agent_id"])
        alerts = [e for e in received.events if e.frame["type"] == "queue_alert"]
        assert len(alerts) == 1 and set(alerts[0].channels) == {f"agent:{a}", f"agent:{b}"}  # every online agent
    # a (0/1) and b (0/2) are equally free: a by id; then b, b; then nobody has room: the fourth waits.
    assert assigned == [a, b, b, None]
    with inst.db.read() as conn:
        assert routing.queued(conn, seed.north, [team.id]) != []
    # An agent sees theirs and the queue, not another's; a manager sees all.
    mine = {c["id"] for c in list_conversations(inst.db, seed.north, Viewer(a, False))}
    everything = {c["id"] for c in list_conversations(inst.db, seed.north, Viewer(0, True))}
    assert len(everything) == 4 and len(mine) == 2  # the first conversation, and the one waiting in the queue
    # b resolves one: the waiting conversation goes to b at once.
    theirs = [c for c in list_conversations(inst.db, seed.north, Viewer(b, False)) if c["assigned_agent_id"] == b]
    events = flow.resolve(ctx, seed.north, theirs[0]["id"])
    assert any(e.frame.get("type") == "assigned" and e.channels == (f"agent:{b}",) for e in events)


def test_out_of_hours_the_customer_is_told_and_the_conversation_waits(inst: Instance, seed: Seed) -> None:
    flow, ctx = echo_flow(inst), cli_context(seed.north)
    closed = {"timezone": "UTC", "days": {}}  # never open
    routing.save_team(inst.db, ctx, seed.north, "Nights", [], closed, "We are closed; we answer at 8:00.", True)
    received, _ = flow.ask(ctx, seed.north, "I need to speak to an agent", sender="visitor:z", visitor_id="z")
    with inst.db.read() as conn:
        notes = conn.execute("SELECT content, outcome FROM messages WHERE conversation_id = ? AND role = 'ai'",
                             (received.conversation_id,)).fetchall()  # fmt: skip
        status = conn.execute("SELECT status FROM conversations WHERE id = ?", (received.conversation_id,)).fetchone()[0]
    assert [(n["content"], n["outcome"]) for n in notes] == [
        ("We are closed; we answer at 8:00. You can leave a message here: an agent will see it first thing, and the"
         " conversation stays open.", "notice")]  # never "a person will join shortly" when nobody can
    assert status == "escalated"
    hours = {"timezone": "Europe/Paris", "days": {"mon": [["09:00", "17:00"]]}}
    assert routing.is_open(hours, datetime(2026, 11, 23, 9, 30, tzinfo=UTC))  # Monday 10:30 in Paris
    assert not routing.is_open(hours, datetime(2026, 11, 23, 16, 30, tzinfo=UTC))  # 17:30 in Paris
    assert not routing.is_open(hours, datetime(2026, 11, 24, 9, 30, tzinfo=UTC))  # Tuesday
    for bad in ({"timezone": "Mars/Olympus"}, {"days": {"someday": []}}, {"days": {"mon": [["17:00", "09:00"]]}}):
        with pytest.raises(InvalidValue):
            routing.check_hours(bad)


def test_bad_input_changes_nothing(inst: Instance, seed: Seed) -> None:
    flow, ctx = echo_flow(inst), cli_context(seed.north)
    with pytest.raises(PayloadTooLarge):
        flow.receive(ctx, seed.north, "x" * 4097, sender="visitor:v")
    with pytest.raises(InvalidValue):
        flow.receive(ctx, seed.north, "   ", sender="visitor:v")
    received, _ = flow.ask(ctx, seed.north, "hello", sender="visitor:v", visitor_id="v")
    with pytest.raises(NotFound):  # another visitor's conversation does not exist for them
        flow.receive(ctx, seed.north, "hi", sender="visitor:w", visitor_id="w", conversation_id=received.conversation_id)
    with pytest.raises(NotFound):  # nor in another organisation
        flow.receive(cli_context(seed.south), seed.south, "hi", sender="visitor:v", conversation_id=received.conversation_id)
    flow.resolve(ctx, seed.north, received.conversation_id)
    with pytest.raises(Conflict):
        flow.receive(ctx, seed.north, "more", sender="visitor:v", visitor_id="v", conversation_id=received.conversation_id)
    with inst.db.read() as conn:
        assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 2
        assert json.loads(conn.execute("SELECT tags FROM conversations").fetchone()[0]) == []


def test_the_summary_keeps_the_customers_own_most_informative_sentences() -> None:
    texts = ["My card was charged twice for the March invoice.", "Hello?", "Also the portal shows a wrong address."]
    summary = extractive_summary(texts)
    assert summary == "My card was charged twice for the March invoice. Also the portal shows a wrong address."


def test_a_resend_of_a_message_that_was_stored_but_never_answered_gets_its_answer(inst: Instance, seed: Seed) -> None:
    flow, ctx = echo_flow(inst), cli_context(seed.north)
    stored = flow.receive(ctx, seed.north, "are you there?", sender="visitor:v", visitor_id="v", client_id="c-9")
    # (the reply was never computed: the process stopped after the ack)
    again, reply = flow.ask(ctx, seed.north, "are you there?", sender="visitor:v", visitor_id="v", client_id="c-9",
                            conversation_id=stored.conversation_id)  # fmt: skip
    assert again.duplicate and again.message_id == stored.message_id
    assert reply.answer is not None and reply.answer.text == "are you there?"
    third, reply = flow.ask(ctx, seed.north, "are you there?", sender="visitor:v", visitor_id="v", client_id="c-9",
                            conversation_id=stored.conversation_id)  # fmt: skip
    assert third.duplicate and reply.answer is None and third.reply_id is not None  # answered once, not twice
    with inst.db.read() as conn:
        assert [r[0] for r in conn.execute("SELECT role FROM messages ORDER BY id")] == ["customer", "ai"]


def test_a_resend_while_the_first_copy_is_being_answered_is_answered_once(inst: Instance, seed: Seed) -> None:
    flow, ctx = echo_flow(inst), cli_context(seed.north)
    first = flow.receive(ctx, seed.north, "is it open?", sender="visitor:v", visitor_id="v", client_id="c-1")
    resent = flow.receive(ctx, seed.north, "is it open?", sender="visitor:v", visitor_id="v", client_id="c-1",
                          conversation_id=first.conversation_id)  # fmt: skip
    assert resent.duplicate and resent.answer_needed  # nothing answered yet, so the resend asks again
    assert flow.respond(ctx, seed.north, first).answer is not None
    late = flow.respond(ctx, seed.north, resent)  # the resend's answer lands second: dropped
    assert late.answer is None and late.message_id is None
    later = flow.receive(ctx, seed.north, "and on Sundays?", sender="visitor:v", visitor_id="v", client_id="c-2",
                         conversation_id=first.conversation_id)  # fmt: skip
    assert flow.respond(ctx, seed.north, later).answer is not None  # the next question is answered as usual
    with inst.db.read() as conn:
        roles = [r[0] for r in conn.execute("SELECT role FROM messages ORDER BY id")]
    assert roles == ["customer", "ai", "customer", "ai"]


def test_paging_with_before_lists_every_conversation_once(inst: Instance, seed: Seed) -> None:
    flow, ctx = echo_flow(inst), cli_context(seed.north)
    ids = [flow.receive(ctx, seed.north, f"hello {n}", sender=f"visitor:{n}", visitor_id=str(n)).conversation_id
           for n in range(7)]  # fmt: skip
    flow.receive(ctx, seed.north, "newer activity on an old one", sender="visitor:0", visitor_id="0",
                 conversation_id=ids[0])  # fmt: skip
    seen: list[int] = []
    before = None
    while True:
        page = list_conversations(inst.db, seed.north, Viewer(0, True), limit=3, before=before)
        if not page:
            break
        seen += [c["id"] for c in page]
        before = page[-1]["id"]
    assert seen == sorted(ids, reverse=True)
