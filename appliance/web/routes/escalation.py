"""Escalation rules (configure_escalations): list, create, edit, delete, reorder, and try a rule on a sample message
without saving it."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from appliance.auth.principal import Principal
from appliance.auth.roles import Permission
from appliance.escalation import rules
from appliance.escalation.triggers import MAX_PATTERN_CHARS
from appliance.web.deps import client_addr, instance, requires
from appliance.web.params import Count, Id, Int

router = APIRouter(prefix="/api/escalation-rules", tags=["escalation"])
CONFIGURE_ESCALATIONS = requires(Permission.CONFIGURE_ESCALATIONS)
MAX_SAMPLE_CHARS = 8192  # a sample is never stored; this only keeps a request small


class RuleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=1000)
    trigger_type: str = Field(max_length=40)
    trigger_value: Annotated[str, Field(max_length=MAX_PATTERN_CHARS * 2)] | Int | float = Field(
        default="", description="sentiment/confidence 0-100, customer_value, repeated_failure N, a keyword regex, "
        "a topic, or extra phrases (a regex) for customer_request",
    )  # fmt: skip
    action: str = Field(default="escalate", max_length=40)
    target_team_id: Id | None = None
    tag: str | None = Field(default=None, max_length=200)
    priority: Int | None = Field(default=None, description="Lower runs first; null: last on create, kept on edit")
    active: bool = True

    def to_input(self) -> rules.RuleInput:
        value = self.trigger_value
        return rules.RuleInput(
            self.name, self.trigger_type, value if isinstance(value, str) else str(value), self.action,
            self.target_team_id, self.tag, self.priority, self.active,
        )  # fmt: skip


class SampleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(default="", max_length=MAX_SAMPLE_CHARS)
    role: Literal["customer", "ai"] = "customer"
    sentiment: float | None = Field(default=None, ge=0, le=100)
    topic: str | None = Field(default=None, max_length=200)
    customer_value: float = Field(default=0.0, ge=0)
    confidence: int | None = Field(default=None, ge=0, le=100)
    failed_attempts: Count = 0
    human_requested: bool = False


class RuleTrial(RuleBody):
    sample: SampleBody


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[Id] = Field(max_length=rules.MAX_RULES)


@router.get("", summary="The organisation's escalation rules, in the order they are evaluated")
def list_rules(request: Request, principal: Principal = CONFIGURE_ESCALATIONS) -> list[dict[str, Any]]:
    return [asdict(r) for r in rules.list_rules(instance(request).db, principal.org_id)]


@router.post("", status_code=201, summary="Create an escalation rule")
def create_rule(body: RuleBody, request: Request, principal: Principal = CONFIGURE_ESCALATIONS) -> dict[str, Any]:
    ctx = principal.context(client_addr(request))
    return asdict(rules.create_rule(instance(request).db, ctx, principal.org_id, body.to_input()))


@router.post("/reorder", summary="Set the evaluation order: every rule's id once, first evaluated first")
def reorder(body: Order, request: Request, principal: Principal = CONFIGURE_ESCALATIONS) -> list[dict[str, Any]]:
    ctx = principal.context(client_addr(request))
    return [asdict(r) for r in rules.reorder(instance(request).db, ctx, principal.org_id, body.ids)]


@router.post("/test", summary="Try an unsaved rule on a sample message; nothing is saved")
def try_rule(body: RuleTrial, request: Request, principal: Principal = CONFIGURE_ESCALATIONS) -> dict[str, Any]:
    sample = rules.Sample(**body.sample.model_dump())
    decisions = rules.test_rule(instance(request).db, principal.org_id, body.to_input(), sample)
    return {"fired": bool(decisions), "decisions": [asdict(d) for d in decisions]}


@router.get("/{rule_id}", summary="One escalation rule")
def get_rule(rule_id: Id, request: Request, principal: Principal = CONFIGURE_ESCALATIONS) -> dict[str, Any]:
    return asdict(rules.get_rule(instance(request).db, principal.org_id, rule_id))


@router.put("/{rule_id}", summary="Replace an escalation rule's fields")
def update_rule(
    rule_id: Id, body: RuleBody, request: Request, principal: Principal = CONFIGURE_ESCALATIONS
) -> dict[str, Any]:
    ctx = principal.context(client_addr(request))
    return asdict(rules.update_rule(instance(request).db, ctx, principal.org_id, rule_id, body.to_input()))


@router.delete("/{rule_id}", status_code=204, summary="Delete an escalation rule")
def delete_rule(rule_id: Id, request: Request, principal: Principal = CONFIGURE_ESCALATIONS) -> None:
    rules.delete_rule(instance(request).db, principal.context(client_addr(request)), principal.org_id, rule_id)
