"""Escalation rules on a real database: each trigger at its boundary, rule order and the first escalation winning,
tags, inactive rules, the built-in triggers, validation, reordering, the audit trail, and the triage the
conversation flow calls."""

from __future__ import annotations

import json
from typing import Any

import pytest

from appliance.conversations.policy import Signals
from appliance.errors import InvalidValue, NotFound
from appliance.escalation import rules
from appliance.escalation.rules import Builtins, Rule, RuleInput, RulesTriage, Sample, evaluate
from appliance.instance import Instance, cli_context
from appliance.store import now_iso
from tests.conftest import Seed


def add_team(inst: Instance, org_id: int, name: str) -> int:
    with inst.db.write() as conn:
        row_id = conn.execute("INSERT INTO teams (org_id, name, created_at) VALUES (?, ?, ?)",
                              (org_id, name, now_iso())).lastrowid  # fmt: skip
    assert row_id is not None
    return int(row_id)


def rule(trigger_type: str, value: str, action: str = "escalate", *, id: int = 1, priority: int = 0,
         tag: str | None = None, team: int | None = None, active: bool = True, name: str = "r") -> Rule:  # fmt: skip
    return Rule(id, 1, name, trigger_type, value, action, team, tag, priority, active, "cli:root", "t", "t")


def signals(role: str = "customer", text: str = "hello", **kw: Any) -> Signals:
    return Signals(org_id=1, conversation_id=7, role=role, text=text, **kw)  # type: ignore[arg-type]


def rule_events(inst: Instance) -> list[tuple[str, str, dict[str, Any]]]:
    with inst.db.read() as conn:
        rows = conn.execute("SELECT target, details, org_id FROM audit_events WHERE action = 'escalation.rule_changed'"
                            " ORDER BY id").fetchall()  # fmt: skip
    return [(str(r[0]), json.loads(r[1])["change"], json.loads(r[1])["fields"]) for r in rows]


# -- each trigger fires at its boundary and not past it ---------------------------------------------------------

BOUNDARIES = [
    # trigger, value, signals that fire, signals that do not
    ("sentiment", "25", signals(sentiment=25.0), signals(sentiment=25.1)),
    ("sentiment", "25", signals(sentiment=0.0), signals(sentiment=None)),
    ("sentiment", "25", signals(sentiment=10.0), signals("ai", sentiment=10.0)),
    ("keyword", r"refund|charge\s*back", signals(text="I want a REFUND now"), signals(text="a fun day")),
    ("keyword", r"refund", signals(text="refund"), signals("ai", text="Your refund is on its way")),
    ("topic", "Billing", signals(topic="billing"), signals(topic="billing-disputes")),
    ("topic", "billing", signals(topic=" BILLING "), signals(topic=None)),
    ("customer_value", "10000", signals(customer_value=10000.0), signals(customer_value=9999.99)),
    ("confidence", "60", signals("ai", confidence=59), signals("ai", confidence=60)),
    ("confidence", "60", signals("ai", confidence=0), signals("customer", confidence=10)),
    ("repeated_failure", "2", signals(failed_attempts=2), signals(failed_attempts=1)),
    ("repeated_failure", "2", signals("ai", failed_attempts=3), signals("ai", failed_attempts=0)),
    ("customer_request", "", signals(text="can I talk to a human?"), signals(text="what are your hours?")),
    ("customer_request", "", signals(human_requested=True), signals("ai", text="I will connect you to a person")),
    ("customer_request", r"\bmensch\b", signals(text="Ich will einen Mensch"), signals(text="menschlich")),
]


@pytest.mark.parametrize(("trigger", "value", "fires", "quiet"), BOUNDARIES)
def test_each_trigger_fires_at_its_boundary(trigger: str, value: str, fires: Signals, quiet: Signals) -> None:
    r = rule(trigger, value)
    [decision] = evaluate([r], fires)
    assert (decision.trigger_type, decision.action, decision.rule_id) == (trigger, "escalate", 1)
    assert evaluate([r], quiet) == []


def test_decisions_explain_themselves_with_the_values_compared() -> None:
    [d] = evaluate([rule("sentiment", "25", name="Angry customers")], signals(sentiment=12.0))
    assert d.reason == "rule 'Angry customers' (sentiment ≤ 25): message sentiment 12.0"
    assert d.inputs == {"sentiment": 12.0, "threshold": 25.0}
    [d] = evaluate([rule("confidence", "60", name="Unsure")], signals("ai", confidence=42))
    assert d.reason == "rule 'Unsure' (confidence < 60): reply confidence 42"
    # a keyword decision says where it matched, never what the customer wrote
    [d] = evaluate([rule("keyword", "lawyer", name="Legal")], signals(text="my LAWYER will call"))
    assert d.inputs == {"pattern": "lawyer", "match_start": 3, "match_end": 9}
    assert "LAWYER" not in d.reason and "LAWYER" not in json.dumps(d.inputs)


# -- order, tags, inactive rules --------------------------------------------------------------------------------


def test_rules_run_in_priority_order_and_the_first_escalation_wins() -> None:
    angry = signals(sentiment=5.0, text="refund please", customer_value=50000.0)
    ruleset = [
        rule("keyword", "refund", "escalate", id=1, priority=30),
        rule("customer_value", "1000", "tag", id=2, priority=40, tag="vip"),
        rule("sentiment", "20", "route_to_team", id=3, priority=20, team=9),
        rule("sentiment", "50", "tag", id=4, priority=10, tag="angry"),
    ]
    decisions = evaluate(ruleset, angry, Builtins(3, 10))
    # tag (priority 10), then the route (priority 20) stops evaluation: neither rule 1 nor the vip tag runs
    assert [(d.rule_id, d.action, d.tag, d.team_id) for d in decisions] == [
        (4, "tag", "angry", None), (3, "route_to_team", None, 9),
    ]  # fmt: skip
    # equal priorities fall back to id order
    tied = [rule("keyword", "refund", "escalate", id=8, priority=0), rule("keyword", "refund", "route_to_team",
                                                                          id=5, priority=0, team=2)]  # fmt: skip
    assert [d.rule_id for d in evaluate(tied, angry)] == [5]


def test_tags_accumulate_each_once_and_inactive_rules_are_ignored() -> None:
    s = signals(sentiment=5.0, customer_value=20000.0)
    ruleset = [
        rule("customer_value", "10000", "tag", id=1, priority=0, tag="vip"),
        rule("sentiment", "10", "tag", id=2, priority=1, tag="angry"),
        rule("customer_value", "5000", "tag", id=3, priority=2, tag="vip"),
        rule("sentiment", "10", "escalate", id=4, priority=3, active=False),
        rule("sentiment", "10", "tag", id=5, priority=4, tag="ignored", active=False),
    ]
    decisions = evaluate(ruleset, s)
    assert [(d.rule_id, d.tag) for d in decisions] == [(1, "vip"), (2, "angry")]
    assert all(d.action == "tag" for d in decisions)


# -- built-in triggers ------------------------------------------------------------------------------------------


def test_builtins_apply_after_the_rules_when_no_rule_escalated() -> None:
    builtins = Builtins(max_failed_attempts=3, max_bot_turns=10)
    [d] = evaluate([], signals(text="let me speak to a person"), builtins)
    assert (d.trigger_type, d.action, d.rule_id) == ("customer_request", "escalate", None)
    [d] = evaluate([], signals(human_requested=True), builtins)
    assert d.inputs["button"] is True
    # the assistant's own words never count as the customer asking
    assert evaluate([], signals("ai", text="Would you like to talk to a person?", bot_turns=1), builtins) == []
    [d] = evaluate([], signals("ai", failed_attempts=3), builtins)
    assert (d.trigger_type, d.inputs) == ("repeated_failure", {"failed_attempts": 3, "limit": 3})
    assert evaluate([], signals("ai", failed_attempts=2), builtins) == []
    [d] = evaluate([], signals("ai", bot_turns=10), builtins)
    assert d.trigger_type == "max_bot_turns" and d.reason == "10 AI replies (the limit is 10)"
    assert evaluate([], signals("ai", bot_turns=9), builtins) == []
    assert evaluate([], signals("customer", bot_turns=12), builtins) == []  # counted on AI replies only
    # tags stay, and the built-in comes after them; a rule that escalated leaves no room for a built-in
    tagged = evaluate([rule("sentiment", "50", "tag", tag="angry")], signals(text="human please", sentiment=1.0),
                      builtins)  # fmt: skip
    assert [(d.action, d.trigger_type) for d in tagged] == [("tag", "sentiment"), ("escalate", "customer_request")]
    by_rule = evaluate([rule("sentiment", "50", "route_to_team", team=4)], signals(text="human please",
                                                                                  sentiment=1.0), builtins)  # fmt: skip
    assert [(d.action, d.rule_id) for d in by_rule] == [("route_to_team", 1)]
    assert evaluate([], signals(text="human please")) == []  # no built-ins asked for


# -- saving rules -----------------------------------------------------------------------------------------------


def test_create_list_update_delete_with_audit(inst: Instance, seed: Seed) -> None:
    ctx = cli_context(seed.north)
    team = add_team(inst, seed.north, "Billing")
    first = rules.create_rule(inst.db, ctx, seed.north, RuleInput("  Angry   customers ", "sentiment", "25.0"))
    second = rules.create_rule(inst.db, ctx, seed.north, RuleInput("Billing", "topic", "billing", "route_to_team",
                                                                   target_team_id=team))  # fmt: skip
    tagged = rules.create_rule(inst.db, ctx, seed.north, RuleInput("VIP", "customer_value", "1e4", "tag", tag="vip"))
    # canonical values, appended last in creation order
    assert (first.name, first.trigger_value, first.priority, first.active) == ("Angry customers", "25", 0, True)
    assert (second.priority, second.target_team_id, tagged.priority, tagged.trigger_value) == (1, team, 2, "10000")
    assert [r.id for r in rules.list_rules(inst.db, seed.north)] == [first.id, second.id, tagged.id]
    assert rules.list_rules(inst.db, seed.south) == []
    with pytest.raises(NotFound):
        rules.get_rule(inst.db, seed.south, first.id)

    updated = rules.update_rule(inst.db, ctx, seed.north, first.id, RuleInput("Angry customers", "sentiment", "20",
                                                                              active=False))  # fmt: skip
    assert (updated.trigger_value, updated.active, updated.priority) == ("20", False, 0)  # priority kept
    assert updated.updated_at > first.updated_at and updated.created_at == first.created_at
    # saving the same again changes nothing and records nothing
    again = rules.update_rule(inst.db, ctx, seed.north, first.id, RuleInput("Angry customers", "sentiment", "20",
                                                                            active=False))  # fmt: skip
    assert again == updated
    rules.delete_rule(inst.db, ctx, seed.north, second.id)
    assert [r.id for r in rules.list_rules(inst.db, seed.north)] == [first.id, tagged.id]
    with pytest.raises(NotFound):
        rules.delete_rule(inst.db, ctx, seed.north, second.id)

    events = rule_events(inst)
    assert [(target, change) for target, change, _ in events] == [
        (f"escalation_rule:{first.id}", "created"), (f"escalation_rule:{second.id}", "created"),
        (f"escalation_rule:{tagged.id}", "created"), (f"escalation_rule:{first.id}", "updated"),
        (f"escalation_rule:{second.id}", "deleted"),
    ]  # fmt: skip
    assert events[0][2] == {"name": "Angry customers", "trigger_type": "sentiment", "trigger_value": "25",
                            "action": "escalate", "target_team_id": None, "tag": None, "priority": 0, "active": True}  # fmt: skip
    assert events[3][2] == {"trigger_value": ["25", "20"], "active": [True, False]}
    assert events[4][2]["target_team_id"] == team
    with inst.db.read() as conn:
        orgs = {r[0] for r in conn.execute("SELECT org_id FROM audit_events WHERE action = 'escalation.rule_changed'")}
    assert orgs == {seed.north}


INVALID = [
    (RuleInput("x", "keyword", "refund[s"), "trigger_value: not a valid regular expression: unterminated character set"),
    (RuleInput("x", "keyword", "a" * 501), "trigger_value: a regular expression may have at most 500 characters"),
    (RuleInput("x", "keyword", r"(\w+\s?)+$"), "trigger_value: a repetition inside a repetition"),
    (RuleInput("x", "keyword", "  "), "trigger_value: a keyword rule needs a regular expression"),
    (RuleInput("x", "customer_request", "(oops"), "trigger_value: not a valid regular expression"),
    (RuleInput("x", "sentiment", "101"), "trigger_value: a sentiment score must be from 0 to 100"),
    (RuleInput("x", "sentiment", "angry"), "trigger_value: a sentiment score must be a number from 0 to 100"),
    (RuleInput("x", "sentiment", "nan"), "trigger_value: a sentiment score must be from 0 to 100"),
    (RuleInput("x", "confidence", "-1"), "trigger_value: a confidence must be from 0 to 100"),
    (RuleInput("x", "customer_value", "-5"), "trigger_value: a customer value must be from 0"),
    (RuleInput("x", "repeated_failure", "0"), "trigger_value: a number of failed attempts must be from 1"),
    (RuleInput("x", "repeated_failure", "1.5"), "trigger_value: a number of failed attempts must be a whole number"),
    (RuleInput("x", "topic", ""), "trigger_value: a topic needs 1 to 100 characters"),
    (RuleInput("x", "mood", "1"), "trigger_type: unknown trigger 'mood'"),
    (RuleInput("x", "sentiment", "10", "notify"), "action: unknown action 'notify'"),
    (RuleInput("x", "sentiment", "10", "route_to_team"), "target_team_id: a route_to_team rule needs a team"),
    (RuleInput("x", "sentiment", "10", "tag"), "tag: a tag rule needs a tag"),
    (RuleInput("x", "sentiment", "10", "tag", tag="VIP!"), "tag: a tag rule needs a tag"),
    (RuleInput("x", "sentiment", "10", "tag", tag="a" * 41), "tag: a tag rule needs a tag of 1 to 40"),
    (RuleInput("x", "sentiment", "10", "escalate", tag="vip"), "tag: only a tag rule carries a tag"),
    (RuleInput("  ", "sentiment", "10"), "name: a rule name needs 1 to 120 characters"),
    (RuleInput("x", "sentiment", "10", priority=-1), "priority: must be from 0"),
]


def test_invalid_rules_are_refused_naming_the_field(inst: Instance, seed: Seed) -> None:
    # one installation for all the cases: setting one up is the slow part
    for data, message in INVALID:
        with pytest.raises(InvalidValue) as raised:
            rules.create_rule(inst.db, cli_context(seed.north), seed.north, data)
        assert message in raised.value.message, data
        assert raised.value.status == 422
    assert rules.list_rules(inst.db, seed.north) == [] and rule_events(inst) == []


def test_a_team_must_be_one_of_the_organisation(inst: Instance, seed: Seed) -> None:
    ctx = cli_context(seed.north)
    theirs = add_team(inst, seed.south, "Their billing")
    for team in (theirs, 999999):
        with pytest.raises(InvalidValue, match=f"target_team_id: team {team} is not a team of this organisation"):
            rules.create_rule(inst.db, ctx, seed.north, RuleInput("x", "sentiment", "10", "route_to_team",
                                                                  target_team_id=team))  # fmt: skip
    ours = add_team(inst, seed.north, "Billing")
    saved = rules.create_rule(inst.db, ctx, seed.north, RuleInput("x", "sentiment", "10", target_team_id=ours))
    with pytest.raises(InvalidValue, match="target_team_id: a tag rule does not route"):
        rules.update_rule(inst.db, ctx, seed.north, saved.id, RuleInput("x", "sentiment", "10", "tag", ours, "t"))
    assert rules.get_rule(inst.db, seed.north, saved.id) == saved


def test_reorder_sets_the_evaluation_order(inst: Instance, seed: Seed) -> None:
    ctx = cli_context(seed.north)
    a, b, c = (rules.create_rule(inst.db, ctx, seed.north, RuleInput(n, "sentiment", "10")) for n in "abc")
    other = rules.create_rule(inst.db, cli_context(seed.south), seed.south, RuleInput("o", "sentiment", "10"))
    before = len(rule_events(inst))
    ordered = rules.reorder(inst.db, ctx, seed.north, [c.id, a.id, b.id])
    assert [(r.id, r.priority) for r in ordered] == [(c.id, 0), (a.id, 1), (b.id, 2)]
    assert [r.id for r in rules.list_rules(inst.db, seed.north)] == [c.id, a.id, b.id]
    # only the rules whose place changed are audited, with old and new priority
    assert rule_events(inst)[before:] == [
        (f"escalation_rule:{c.id}", "updated", {"priority": [2, 0]}),
        (f"escalation_rule:{a.id}", "updated", {"priority": [0, 1]}),
        (f"escalation_rule:{b.id}", "updated", {"priority": [1, 2]}),
    ]  # fmt: skip
    for ids, problem in (([c.id, a.id], f"missing [{b.id}]"), ([c.id, a.id, b.id, a.id], f"repeated [{a.id}]"),
                         ([c.id, a.id, b.id, other.id], f"not rules of this organisation [{other.id}]")):  # fmt: skip
        with pytest.raises(InvalidValue, match=r"ids: list each of the organisation's rules once") as raised:
            rules.reorder(inst.db, ctx, seed.north, ids)
        assert problem in raised.value.message
    assert [r.id for r in rules.list_rules(inst.db, seed.north)] == [c.id, a.id, b.id]
    assert rules.get_rule(inst.db, seed.south, other.id).priority == 0


# -- the triage the conversation flow calls, and trying a rule ---------------------------------------------------


def test_triage_loads_the_organisations_active_rules_and_sees_edits(inst: Instance, seed: Seed) -> None:
    ctx = cli_context(seed.north)
    keyword = rules.create_rule(inst.db, ctx, seed.north, RuleInput("Legal", "keyword", "lawyer", "tag", tag="legal"))
    rules.create_rule(inst.db, ctx, seed.north, RuleInput("Off", "keyword", "lawyer", active=False))
    rules.create_rule(inst.db, cli_context(seed.south), seed.south, RuleInput("South", "keyword", "lawyer"))
    triage = RulesTriage.from_settings(inst.settings)
    message = Signals(seed.north, 1, "customer", "my lawyer and my solicitor will call")
    with inst.db.read() as conn:
        assert [(d.rule_id, d.tag) for d in triage.decide(conn, message)] == [(keyword.id, "legal")]
    # an edit is seen at once: the compiled pattern is cached per (rule, updated_at)
    rules.update_rule(inst.db, ctx, seed.north, keyword.id, RuleInput("Legal", "keyword", "solicitor", "escalate"))
    with inst.db.write() as conn:  # the flow decides inside its write transaction
        [d] = triage.decide(conn, message)
    assert (d.rule_id, d.action, d.inputs["match_start"]) == (keyword.id, "escalate", 17)
    # the built-ins come from the settings
    with inst.db.read() as conn:
        [d] = triage.decide(conn, Signals(seed.north, 1, "ai", "answer", confidence=90,
                                          bot_turns=inst.settings.max_bot_turns))  # fmt: skip
    assert d.trigger_type == "max_bot_turns"


def test_trying_a_rule_validates_it_and_saves_nothing(inst: Instance, seed: Seed) -> None:
    team = add_team(inst, seed.north, "Retention")
    data = RuleInput("Cancellations", "keyword", r"cancel(l?ing)?\b", "route_to_team", target_team_id=team)
    [d] = rules.test_rule(inst.db, seed.north, data, Sample(text="I am cancelling my plan"))
    assert (d.action, d.team_id, d.rule_id) == ("route_to_team", team, None)
    assert d.reason.startswith("rule 'Cancellations' (keyword /cancel(l?ing)?\\b/)")
    assert rules.test_rule(inst.db, seed.north, data, Sample(text="I am cancelling", role="ai")) == []
    # alone: no built-in triggers, and an inactive rule is still tried
    off = RuleInput("Quiet", "sentiment", "30", active=False)
    assert rules.test_rule(inst.db, seed.north, off, Sample(text="human please", sentiment=50.0)) == []
    assert len(rules.test_rule(inst.db, seed.north, off, Sample(sentiment=30.0))) == 1
    with pytest.raises(InvalidValue, match="not a valid regular expression"):
        rules.test_rule(inst.db, seed.north, RuleInput("x", "keyword", "("), Sample(text="("))
    with pytest.raises(InvalidValue, match="is not a team of this organisation"):
        rules.test_rule(inst.db, seed.south, data, Sample(text="cancel"))
    assert rules.list_rules(inst.db, seed.north) == [] and rule_events(inst) == []
