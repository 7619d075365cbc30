"""Escalation rules: an organisation's ordered list of "when this, do that", evaluated on every customer message
and every AI reply.

A rule has a trigger (sentiment, keyword, topic, customer_value, confidence, repeated_failure, customer_request;
their meaning is in `triggers.py`) and an action: `tag` the conversation, `escalate` it to a person (optionally to a
team) or `route_to_team`. Active rules run in priority order (lowest first). Tags accumulate, each tag once; the
first rule that escalates or routes wins and evaluation stops there. When no rule escalated, the built-in triggers
apply: the customer asked for a person, too many failed attempts, too many AI replies.

Rules are validated when saved (a regular expression is compiled then, a team must be the organisation's), and
every change is audited in its own write transaction; the audit event lists the fields, never message text.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from appliance import audit
from appliance.audit.events import Context, EscalationRuleChanged
from appliance.config import Settings
from appliance.conversations.policy import Decision, Signals
from appliance.errors import InvalidValue, NotFound
from appliance.escalation import triggers
from appliance.escalation.human import asks_for_human
from appliance.escalation.triggers import TRIGGER_TYPES, Trigger
from appliance.store import Connection, Database, now_iso

log = logging.getLogger("appliance.escalation")

ACTIONS = ("escalate", "route_to_team", "tag")
MAX_NAME_CHARS = 120
MAX_TAG_CHARS = 40
MAX_PRIORITY = 1_000_000
MAX_RULES = 1000  # per organisation: every message is evaluated against all of them
_TAG_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")
EDITABLE = ("name", "trigger_type", "trigger_value", "action", "target_team_id", "tag", "priority", "active")


@dataclass(frozen=True)
class RuleInput:
    """The fields an editor sets. priority None: last (on create) or unchanged (on update)."""

    name: str
    trigger_type: str
    trigger_value: str = ""
    action: str = "escalate"
    target_team_id: int | None = None
    tag: str | None = None
    priority: int | None = None
    active: bool = True


@dataclass(frozen=True)
class Rule:
    id: int
    org_id: int
    name: str
    trigger_type: str
    trigger_value: str
    action: str
    target_team_id: int | None
    tag: str | None
    priority: int
    active: bool
    created_by: str
    created_at: str
    updated_at: str

    def editable(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in EDITABLE}


@dataclass(frozen=True)
class Sample:
    """A message to try a rule on (what `Signals` would carry, without a conversation)."""

    text: str = ""
    role: Literal["customer", "ai"] = "customer"
    sentiment: float | None = None
    topic: str | None = None
    customer_value: float = 0.0
    confidence: int | None = None
    failed_attempts: int = 0
    human_requested: bool = False


# -- validation ------------------------------------------------------------------------------------------------


def _validated(conn: Connection, org_id: int, data: RuleInput) -> tuple[RuleInput, Trigger]:
    """The input with its values in canonical form, and its parsed trigger; InvalidValue names the field."""
    name = " ".join(data.name.split())
    if not name or len(name) > MAX_NAME_CHARS:
        raise InvalidValue(f"name: a rule name needs 1 to {MAX_NAME_CHARS} characters")
    if data.trigger_type not in TRIGGER_TYPES:
        raise InvalidValue(f"trigger_type: unknown trigger {data.trigger_type!r}; triggers are: "
                           f"{', '.join(TRIGGER_TYPES)}")  # fmt: skip
    trigger = triggers.parse(data.trigger_type, data.trigger_value)
    if data.action not in ACTIONS:
        raise InvalidValue(f"action: unknown action {data.action!r}; actions are: {', '.join(ACTIONS)}")
    if data.action == "tag":
        tag = (data.tag or "").strip()
        if not tag or len(tag) > MAX_TAG_CHARS or not set(tag) <= _TAG_CHARS:
            raise InvalidValue(f"tag: a tag rule needs a tag of 1 to {MAX_TAG_CHARS} characters from a-z, 0-9, _ and -")
        if data.target_team_id is not None:
            raise InvalidValue("target_team_id: a tag rule does not route; leave the team empty")
    else:
        tag = None
        if data.tag is not None and data.tag.strip():
            raise InvalidValue(f"tag: only a tag rule carries a tag (this rule's action is {data.action})")
        if data.action == "route_to_team" and data.target_team_id is None:
            raise InvalidValue("target_team_id: a route_to_team rule needs a team")
    if data.target_team_id is not None and conn.execute(
        "SELECT 1 FROM teams WHERE id = ? AND org_id = ?", (data.target_team_id, org_id)
    ).fetchone() is None:
        raise InvalidValue(f"target_team_id: team {data.target_team_id} is not a team of this organisation")
    if data.priority is not None and not 0 <= data.priority <= MAX_PRIORITY:
        raise InvalidValue(f"priority: must be from 0 to {MAX_PRIORITY}")
    return replace(data, name=name, trigger_value=trigger.value, tag=tag), trigger


# -- reading and changing rules --------------------------------------------------------------------------------


def _rule(row: Any) -> Rule:
    team = row["target_team_id"]
    return Rule(
        int(row["id"]), int(row["org_id"]), str(row["name"]), str(row["trigger_type"]), str(row["trigger_value"]),
        str(row["action"]), None if team is None else int(team), row["tag"], int(row["priority"]),
        bool(row["active"]), str(row["created_by"]), str(row["created_at"]), str(row["updated_at"]),
    )  # fmt: skip


def _select(conn: Connection, org_id: int, active_only: bool = False) -> list[Rule]:
    where = " AND active = 1" if active_only else ""
    rows = conn.execute(
        f"SELECT * FROM escalation_rules WHERE org_id = ?{where} ORDER BY priority, id", (org_id,)
    ).fetchall()
    return [_rule(r) for r in rows]


def _get(conn: Connection, org_id: int, rule_id: int) -> Rule:
    row = conn.execute("SELECT * FROM escalation_rules WHERE id = ? AND org_id = ?", (rule_id, org_id)).fetchone()
    if row is None:
        raise NotFound(f"escalation rule {rule_id} not found")
    return _rule(row)


def list_rules(db: Database, org_id: int) -> list[Rule]:
    """The organisation's rules in the order they are evaluated."""
    with db.read() as conn:
        return _select(conn, org_id)


def get_rule(db: Database, org_id: int, rule_id: int) -> Rule:
    with db.read() as conn:
        return _get(conn, org_id, rule_id)


def create_rule(db: Database, ctx: Context, org_id: int, data: RuleInput) -> Rule:
    """Save a new rule; without a priority it goes last."""
    now = now_iso()
    with db.write() as conn:
        clean, _ = _validated(conn, org_id, data)
        count, last = conn.execute(
            "SELECT count(*), max(priority) FROM escalation_rules WHERE org_id = ?", (org_id,)
        ).fetchone()
        if count >= MAX_RULES:
            raise InvalidValue(f"an organisation may have at most {MAX_RULES} escalation rules")
        priority = clean.priority if clean.priority is not None else (0 if last is None else int(last) + 1)
        row_id = conn.execute(
            "INSERT INTO escalation_rules (org_id, name, trigger_type, trigger_value, action, target_team_id, tag,"
            " priority, active, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (org_id, clean.name, clean.trigger_type, clean.trigger_value, clean.action, clean.target_team_id,
             clean.tag, priority, int(clean.active), ctx.actor, now, now),
        ).lastrowid  # fmt: skip
        assert row_id is not None
        rule = _get(conn, org_id, int(row_id))
        audit.record(conn, ctx, EscalationRuleChanged(rule.id, "created", rule.editable()))
    return rule


def update_rule(db: Database, ctx: Context, org_id: int, rule_id: int, data: RuleInput) -> Rule:
    """Replace a rule's fields (a priority of None keeps its place). The audit event lists each changed field as
    [old, new]; a save that changes nothing records nothing."""
    with db.write() as conn:
        current = _get(conn, org_id, rule_id)
        clean, _ = _validated(conn, org_id, data)
        if clean.priority is None:
            clean = replace(clean, priority=current.priority)
        new = {name: getattr(clean, name) for name in EDITABLE}
        changes = {name: [old, new[name]] for name, old in current.editable().items() if old != new[name]}
        if not changes:
            return current
        conn.execute(
            "UPDATE escalation_rules SET name = ?, trigger_type = ?, trigger_value = ?, action = ?,"
            " target_team_id = ?, tag = ?, priority = ?, active = ?, updated_at = ? WHERE id = ?",
            (clean.name, clean.trigger_type, clean.trigger_value, clean.action, clean.target_team_id, clean.tag,
             clean.priority, int(clean.active), now_iso(), rule_id),
        )  # fmt: skip
        audit.record(conn, ctx, EscalationRuleChanged(rule_id, "updated", changes))
        return _get(conn, org_id, rule_id)


def delete_rule(db: Database, ctx: Context, org_id: int, rule_id: int) -> None:
    """Remove a rule; the audit event keeps what it was. Decisions it took stay with their conversations."""
    with db.write() as conn:
        rule = _get(conn, org_id, rule_id)
        conn.execute("DELETE FROM escalation_rules WHERE id = ?", (rule_id,))
        audit.record(conn, ctx, EscalationRuleChanged(rule_id, "deleted", rule.editable()))


def reorder(db: Database, ctx: Context, org_id: int, ordered_ids: Sequence[int]) -> list[Rule]:
    """Set the evaluation order: `ordered_ids` names each of the organisation's rules once, first evaluated first.
    Each rule whose place changed gets an audit event with its old and new priority."""
    now = now_iso()
    with db.write() as conn:
        current = {r.id: r for r in _select(conn, org_id)}
        duplicates = sorted(i for i, n in Counter(ordered_ids).items() if n > 1)
        unknown = sorted(set(ordered_ids) - set(current))
        missing = sorted(set(current) - set(ordered_ids))
        if duplicates or unknown or missing:
            problems = [f"{what} {ids}" for what, ids in
                        (("repeated", duplicates), ("not rules of this organisation", unknown), ("missing", missing))
                        if ids]  # fmt: skip
            raise InvalidValue(f"ids: list each of the organisation's rules once ({'; '.join(problems)})")
        for priority, rule_id in enumerate(ordered_ids):
            old = current[rule_id].priority
            if old == priority:
                continue
            conn.execute("UPDATE escalation_rules SET priority = ?, updated_at = ? WHERE id = ?",
                         (priority, now, rule_id))  # fmt: skip
            audit.record(conn, ctx, EscalationRuleChanged(rule_id, "updated", {"priority": [old, priority]}))
        return _select(conn, org_id)


# -- evaluation ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Builtins:
    """The triggers that apply without any rule, after the rules, when no rule escalated."""

    max_failed_attempts: int
    max_bot_turns: int

    def check(self, signals: Signals) -> Decision | None:
        if signals.role == "customer" and (signals.human_requested or asks_for_human(signals.text)):
            how = "pressed “talk to a human”" if signals.human_requested else "asked for a person"
            return Decision("customer_request", "escalate", f"the customer {how}",
                            inputs={"button": signals.human_requested, "detector": not signals.human_requested})  # fmt: skip
        if signals.failed_attempts >= self.max_failed_attempts:
            return Decision("repeated_failure", "escalate",
                            f"{signals.failed_attempts} failed attempts (the limit is {self.max_failed_attempts})",
                            inputs={"failed_attempts": signals.failed_attempts, "limit": self.max_failed_attempts})  # fmt: skip
        if signals.role == "ai" and signals.bot_turns >= self.max_bot_turns:
            return Decision("max_bot_turns", "escalate",
                            f"{signals.bot_turns} AI replies (the limit is {self.max_bot_turns})",
                            inputs={"bot_turns": signals.bot_turns, "limit": self.max_bot_turns})  # fmt: skip
        return None


class TriggerCache:
    """Parsed triggers (compiled regular expressions) by (rule id, updated_at): an edit changes updated_at, so a
    stale entry is never used, only left to be dropped."""

    MAX_ENTRIES = 4096

    def __init__(self) -> None:
        self._parsed: dict[tuple[int, str], Trigger] = {}

    def get(self, rule: Rule) -> Trigger:
        key = (rule.id, rule.updated_at)
        trigger = self._parsed.get(key)
        if trigger is None:
            trigger = triggers.parse(rule.trigger_type, rule.trigger_value)
            if len(self._parsed) >= self.MAX_ENTRIES:
                self._parsed.clear()  # edits leave old keys behind; starting over is cheaper than tracking them
            self._parsed[key] = trigger
        return trigger


def evaluate(
    rules: Iterable[Rule], signals: Signals, builtins: Builtins | None = None, cache: TriggerCache | None = None
) -> list[Decision]:
    """The decisions for these signals: tags in rule order, then at most one escalate or route_to_team (the first
    rule that fires, else a built-in trigger). Pure: reads and writes nothing."""
    decisions: list[Decision] = []
    tags: set[str] = set()
    for rule in sorted(rules, key=lambda r: (r.priority, r.id)):
        if not rule.active:
            continue
        try:
            trigger = cache.get(rule) if cache is not None else triggers.parse(rule.trigger_type, rule.trigger_value)
        except InvalidValue as exc:
            # Saved rules are validated; one that no longer parses must not stop the message being stored.
            log.warning("escalation rule skipped", extra={"fields": {"rule_id": rule.id, "error": exc.message}})
            continue
        fired = trigger.check(signals)
        if fired is None:
            continue
        seen, inputs = fired
        reason = f"rule '{rule.name}' ({trigger.describe()}): {seen}"
        if rule.action == "tag":
            if rule.tag is None or rule.tag in tags:
                continue
            tags.add(rule.tag)
            decisions.append(Decision(rule.trigger_type, "tag", reason, rule.id, None, rule.tag, inputs))
            continue
        action: Literal["escalate", "route_to_team"] = "route_to_team" if rule.action == "route_to_team" else "escalate"
        decisions.append(Decision(rule.trigger_type, action, reason, rule.id, rule.target_team_id, None, inputs))
        return decisions
    built_in = builtins.check(signals) if builtins is not None else None
    if built_in is not None:
        decisions.append(built_in)
    return decisions


class RulesTriage:
    """The conversation flow's `Triage`: the organisation's active rules, then the built-in triggers."""

    def __init__(self, max_failed_attempts: int, max_bot_turns: int) -> None:
        self.builtins = Builtins(max_failed_attempts, max_bot_turns)
        self._cache = TriggerCache()

    @classmethod
    def from_settings(cls, settings: Settings) -> RulesTriage:
        return cls(settings.max_failed_attempts, settings.max_bot_turns)

    def decide(self, conn: Connection, signals: Signals) -> list[Decision]:
        return evaluate(_select(conn, signals.org_id, active_only=True), signals, self.builtins, self._cache)


def test_rule(source: Database | Connection, org_id: int, data: RuleInput, sample: Sample) -> list[Decision]:
    """What an unsaved rule would decide on a sample message, alone (no other rules, no built-ins, active or not).
    Validated as a save would be; nothing is written."""
    if isinstance(source, Database):
        with source.read() as conn:
            clean, _ = _validated(conn, org_id, data)
    else:
        clean, _ = _validated(source, org_id, data)
    rule = Rule(0, org_id, clean.name, clean.trigger_type, clean.trigger_value, clean.action, clean.target_team_id,
                clean.tag, 0, True, "", "", "")  # fmt: skip
    signals = Signals(org_id=org_id, conversation_id=0, role=sample.role, text=sample.text, sentiment=sample.sentiment,
                      topic=sample.topic, customer_value=sample.customer_value, confidence=sample.confidence,
                      failed_attempts=sample.failed_attempts, human_requested=sample.human_requested)  # fmt: skip
    # An unsaved rule has no id: the decisions say so rather than pointing at rule 0.
    return [replace(d, rule_id=None) for d in evaluate([rule], signals)]


# pytest collects functions named test_* from modules it imports; this one is part of the API, not a test.
test_rule.__test__ = False  # type: ignore[attr-defined]
