"""The escalation rules page (/console/rules, configure_escalations, as the API's /api/escalation-rules): the rules
in the order they are evaluated, a form to create or edit one, moving a rule up or down, turning it on or off, and
trying a rule on a sample message without saving it (htmx swaps the result in place).

Every change goes through the escalation domain's functions, which validate (a regular expression is compiled, a
team must be the organisation's) and audit. A refused form comes back with the domain's message and the values as
typed; nothing is saved.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request, Response

from appliance.auth.principal import Principal
from appliance.auth.roles import Permission
from appliance.console.render import ConsoleRoute, is_htmx, page, see_other
from appliance.conversations import routing
from appliance.errors import BadInput, InvalidValue
from appliance.escalation import rules
from appliance.escalation.triggers import MAX_PATTERN_CHARS, TRIGGER_TYPES
from appliance.web.deps import client_addr, instance, requires
from appliance.web.params import MAX_INT, Id, parse_id
from appliance.web.routes.escalation import MAX_SAMPLE_CHARS

router = APIRouter(prefix="/console/rules", route_class=ConsoleRoute, include_in_schema=False)
CONFIGURE_ESCALATIONS = requires(Permission.CONFIGURE_ESCALATIONS)
PATH = "/console/rules"
TRIGGER_HINTS = {
    "sentiment": "Fires when the customer's sentiment is at or below this score (0-100).",
    "keyword": "A regular expression matched against the customer's message.",
    "topic": "The topic's name, as the classifier assigns it.",
    "customer_value": "Fires when the customer's value is at or above this figure.",
    "confidence": "Fires when the assistant's answer has a confidence below this (0-100).",
    "repeated_failure": "Fires after this many failed attempts to answer.",
    "customer_request": "Fires when the customer asks for a person; optionally, extra phrases as a regular "
                        "expression.",
}  # fmt: skip

Text = Annotated[str, Form(max_length=1000)]
Value = Annotated[str, Form(max_length=MAX_PATTERN_CHARS * 2)]


def _rule_input(name: str, trigger_type: str, trigger_value: str, action: str, target_team_id: str, tag: str,
                active: bool) -> rules.RuleInput:  # fmt: skip
    team = parse_id(target_team_id, "target team")
    return rules.RuleInput(name, trigger_type, trigger_value.strip(), action, team, tag.strip() or None, None, active)


def _form_values(rule: rules.Rule | rules.RuleInput | None) -> dict[str, Any]:
    if rule is None:
        return {"name": "", "trigger_type": "keyword", "trigger_value": "", "action": "escalate",
                "target_team_id": None, "tag": "", "active": True}  # fmt: skip
    return {"name": rule.name, "trigger_type": rule.trigger_type, "trigger_value": rule.trigger_value,
            "action": rule.action, "target_team_id": rule.target_team_id, "tag": rule.tag or "",
            "active": rule.active}  # fmt: skip


def _page(request: Request, principal: Principal, *, editing: int | None = None, form: dict[str, Any] | None = None,
          error: str | None = None, status: int = 200, trial: dict[str, Any] | None = None) -> Response:  # fmt: skip
    db = instance(request).db
    listed = rules.list_rules(db, principal.org_id)
    teams = {t.id: t.name for t in routing.list_teams(db, principal.org_id)}
    return page(request, "rules.html", principal, status=status, rules=listed, teams=teams, editing=editing,
                form=form or _form_values(None), error=error, trial=trial, trigger_types=TRIGGER_TYPES,
                actions=rules.ACTIONS, hints=TRIGGER_HINTS, max_sample=MAX_SAMPLE_CHARS)  # fmt: skip


@router.get("")
def rules_page(request: Request, principal: Principal = CONFIGURE_ESCALATIONS) -> Response:
    return _page(request, principal)


@router.get("/{rule_id}")
def edit_page(rule_id: Id, request: Request, principal: Principal = CONFIGURE_ESCALATIONS) -> Response:
    rule = rules.get_rule(instance(request).db, principal.org_id, rule_id)
    return _page(request, principal, editing=rule_id, form=_form_values(rule))


def _save(request: Request, principal: Principal, data: rules.RuleInput, rule_id: int | None) -> Response:
    db, ctx = instance(request).db, principal.context(client_addr(request))
    try:
        if rule_id is None:
            rules.create_rule(db, ctx, principal.org_id, data)
        else:
            rules.update_rule(db, ctx, principal.org_id, rule_id, data)
    except BadInput as exc:
        return _page(request, principal, editing=rule_id, form=_form_values(data), error=exc.message,
                     status=exc.status)  # fmt: skip
    return see_other(PATH)


@router.post("")
def create(request: Request, name: Text, trigger_type: Annotated[str, Form(max_length=40)], trigger_value: Value = "",
           action: Annotated[str, Form(max_length=40)] = "escalate",
           target_team_id: Annotated[str, Form(max_length=20)] = "",
           tag: Annotated[str, Form(max_length=200)] = "", active: Annotated[bool, Form()] = False,
           principal: Principal = CONFIGURE_ESCALATIONS) -> Response:  # fmt: skip
    data = _rule_input(name, trigger_type, trigger_value, action, target_team_id, tag, active)
    return _save(request, principal, data, None)


@router.post("/test")
def try_rule(request: Request, name: Text = "Trial", trigger_type: Annotated[str, Form(max_length=40)] = "keyword",
             trigger_value: Value = "", action: Annotated[str, Form(max_length=40)] = "escalate",
             target_team_id: Annotated[str, Form(max_length=20)] = "", tag: Annotated[str, Form(max_length=200)] = "",
             sample_text: Annotated[str, Form(max_length=MAX_SAMPLE_CHARS)] = "",
             sample_role: Annotated[Literal["customer", "ai"], Form()] = "customer",
             sample_sentiment: Annotated[str, Form(max_length=10)] = "",
             sample_confidence: Annotated[str, Form(max_length=10)] = "",
             sample_topic: Annotated[str, Form(max_length=200)] = "",
             sample_value: Annotated[str, Form(max_length=20)] = "",
             sample_failures: Annotated[str, Form(max_length=10)] = "",
             principal: Principal = CONFIGURE_ESCALATIONS) -> Response:  # fmt: skip
    """What the rule in the form would decide on the sample (alone, saved or not); nothing is written."""
    data = _rule_input(name or "Trial", trigger_type, trigger_value, action, target_team_id, tag, True)
    try:
        sample = rules.Sample(sample_text, sample_role, _number(sample_sentiment, "sentiment", 100),
                              sample_topic.strip() or None, _number(sample_value, "customer value") or 0.0,
                              _whole(sample_confidence, "confidence", 100),
                              _whole(sample_failures, "failed attempts") or 0)  # fmt: skip
        decisions = rules.test_rule(instance(request).db, principal.org_id, data, sample)
        trial: dict[str, Any] = {"fired": bool(decisions), "decisions": decisions, "error": None}
    except BadInput as exc:
        trial = {"fired": False, "decisions": [], "error": exc.message}
    if is_htmx(request):
        return page(request, "_rule_trial.html", principal, trial=trial)
    return _page(request, principal, form=_form_values(data), trial=trial)


def _number(raw: str, what: str, high: float | None = None) -> float | None:
    if not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        raise InvalidValue(f"{what}: {raw!r} is not a number") from None
    if not math.isfinite(value):  # float() reads "inf" and "nan", which int() refuses
        raise InvalidValue(f"{what}: {raw!r} is not a number")
    if value < 0 or (high is not None and value > high):
        raise InvalidValue(f"{what}: must be from 0 to {high:g}" if high is not None else f"{what}: must be 0 or more")
    return value


def _whole(raw: str, what: str, high: int | None = None) -> int | None:
    value = _number(raw, what, high)
    if value is not None and value != int(value):
        raise InvalidValue(f"{what}: must be a whole number")
    if value is not None and int(value) > MAX_INT:
        raise InvalidValue(f"{what}: must be at most {MAX_INT}")
    return None if value is None else int(value)


@router.post("/{rule_id}")
def update(rule_id: Id, request: Request, name: Text, trigger_type: Annotated[str, Form(max_length=40)],
           trigger_value: Value = "", action: Annotated[str, Form(max_length=40)] = "escalate",
           target_team_id: Annotated[str, Form(max_length=20)] = "", tag: Annotated[str, Form(max_length=200)] = "",
           active: Annotated[bool, Form()] = False,
           principal: Principal = CONFIGURE_ESCALATIONS) -> Response:  # fmt: skip
    data = _rule_input(name, trigger_type, trigger_value, action, target_team_id, tag, active)
    return _save(request, principal, data, rule_id)


@router.post("/{rule_id}/active")
def set_active(rule_id: Id, request: Request, active: Annotated[bool, Form()],
               principal: Principal = CONFIGURE_ESCALATIONS) -> Response:  # fmt: skip
    db = instance(request).db
    rule = rules.get_rule(db, principal.org_id, rule_id)
    data = rules.RuleInput(**{**rule.editable(), "active": active})
    rules.update_rule(db, principal.context(client_addr(request)), principal.org_id, rule_id, data)
    return see_other(PATH)


@router.post("/{rule_id}/move")
def move(rule_id: Id, request: Request, direction: Annotated[Literal["up", "down"], Form()],
         principal: Principal = CONFIGURE_ESCALATIONS) -> Response:  # fmt: skip
    """One place earlier or later in the evaluation order (the first cannot go up, nor the last down)."""
    db = instance(request).db
    ids = [r.id for r in rules.list_rules(db, principal.org_id)]
    if rule_id not in ids:
        rules.get_rule(db, principal.org_id, rule_id)  # NotFound, with the domain's message
    at = ids.index(rule_id)
    to = at - 1 if direction == "up" else at + 1
    if 0 <= to < len(ids):
        ids[at], ids[to] = ids[to], ids[at]
        rules.reorder(db, principal.context(client_addr(request)), principal.org_id, ids)
    return see_other(PATH)
