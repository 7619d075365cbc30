"""Teams, agents' availability and capacity, topics (the routing taxonomy and its classifier) and canned replies."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from appliance.auth.principal import Principal
from appliance.auth.roles import Permission
from appliance.conversations import canned, routing
from appliance.web.deps import client_addr, instance, requires, requires_any
from appliance.web.params import Id
from appliance.web.routes.conversations import person, publish

router = APIRouter(tags=["routing"])
P = Permission
MANAGE = (P.MANAGE_AGENTS, P.MANAGE_TEAM)
TAXONOMY = (P.CONFIGURE_ESCALATIONS, P.CONFIGURE_AI)


class TeamBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=80)
    members: list[Id] = Field(default_factory=list)
    business_hours: dict[str, Any] = Field(default_factory=dict)
    out_of_hours_message: str = Field(default="", max_length=1000)
    is_default: bool = False


@router.get("/api/teams", summary="Teams with their members and business hours")
def list_teams(request: Request, principal: Principal = requires_any(*MANAGE, P.ASSIGN_CONVERSATIONS)) -> list[dict[str, Any]]:
    return [asdict(t) for t in routing.list_teams(instance(request).db, principal.org_id)]


@router.post("/api/teams", status_code=201, summary="Create a team")
def create_team(body: TeamBody, request: Request, principal: Principal = requires_any(*MANAGE)) -> dict[str, Any]:
    team = routing.save_team(instance(request).db, principal.context(client_addr(request)), principal.org_id,
                             body.name, body.members, body.business_hours, body.out_of_hours_message, body.is_default)  # fmt: skip
    return asdict(team)


@router.put("/api/teams/{team_id}", summary="Change a team")
def update_team(team_id: Id, body: TeamBody, request: Request,
                principal: Principal = requires_any(*MANAGE)) -> dict[str, Any]:  # fmt: skip
    team = routing.save_team(instance(request).db, principal.context(client_addr(request)), principal.org_id,
                             body.name, body.members, body.business_hours, body.out_of_hours_message, body.is_default,
                             team_id)  # fmt: skip
    return asdict(team)


@router.delete("/api/teams/{team_id}", status_code=204, summary="Delete a team (its queue joins the organisation's)")
def delete_team(team_id: Id, request: Request, principal: Principal = requires_any(*MANAGE)) -> Response:
    routing.delete_team(instance(request).db, principal.context(client_addr(request)), principal.org_id, team_id)
    return Response(status_code=204)


@router.get("/api/agents", summary="Agents with availability, capacity, load and teams")
def list_agents(request: Request, principal: Principal = requires_any(*MANAGE, P.ASSIGN_CONVERSATIONS)) -> list[dict[str, Any]]:
    return [asdict(a) for a in routing.list_agents(instance(request).db, principal.org_id)]


class AvailabilityBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    availability: Literal["online", "away", "offline"] | None = None
    capacity: int | None = Field(default=None, ge=0, le=100)


@router.put("/api/agents/me", summary="Set my availability (coming online brings queued conversations and alerts)")
def set_my_availability(body: AvailabilityBody, request: Request,
                        principal: Principal = requires(P.RESPOND_TO_CUSTOMERS)) -> dict[str, Any]:  # fmt: skip
    return asdict(set_availability(request, principal, body.availability, body.capacity))


def set_availability(request: Request, principal: Principal, availability: str | None,
                     capacity: int | None) -> routing.Agent:  # fmt: skip
    """The person's own availability (the API and the console both set it here); coming online brings queued
    conversations and alerts over the hub."""
    if capacity is not None and P.MANAGE_AGENTS not in principal.permissions:
        capacity = None  # capacity is the manager's to set
    agent, events = instance(request).flow.set_availability(principal.context(client_addr(request)),
                                                            principal.org_id, person(principal), availability,
                                                            capacity)  # fmt: skip
    publish(request, events)
    return agent


@router.put("/api/agents/{user_id}", summary="Set an agent's capacity or availability")
def set_agent(user_id: Id, body: AvailabilityBody, request: Request,
              principal: Principal = requires_any(*MANAGE)) -> dict[str, Any]:  # fmt: skip
    agent, events = instance(request).flow.set_availability(principal.context(client_addr(request)),
                                                            principal.org_id, user_id, body.availability,
                                                            body.capacity)  # fmt: skip
    publish(request, events)
    return asdict(agent)


class TopicBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=80)
    examples: list[str] = Field(min_length=1, max_length=500)
    team_id: Id | None = None


@router.get("/api/topics", summary="Topics, their example questions and the classifier's training")
def list_topics(request: Request, principal: Principal = requires_any(*TAXONOMY)) -> dict[str, Any]:
    topics = instance(request).topics
    training = topics.training(principal.org_id)
    return {"topics": [asdict(t) for t in topics.list_topics(principal.org_id)],
            "training": asdict(training) if training else None}  # fmt: skip


@router.post("/api/topics", status_code=201, summary="Add a topic")
def create_topic(body: TopicBody, request: Request, principal: Principal = requires_any(*TAXONOMY)) -> dict[str, Any]:
    return asdict(instance(request).topics.save(principal.context(client_addr(request)), principal.org_id, body.name,
                                                body.examples, body.team_id))  # fmt: skip


@router.put("/api/topics/{topic_id}", summary="Change a topic")
def update_topic(topic_id: Id, body: TopicBody, request: Request,
                 principal: Principal = requires_any(*TAXONOMY)) -> dict[str, Any]:  # fmt: skip
    return asdict(instance(request).topics.save(principal.context(client_addr(request)), principal.org_id, body.name,
                                                body.examples, body.team_id, topic_id))  # fmt: skip


@router.delete("/api/topics/{topic_id}", status_code=204, summary="Delete a topic")
def delete_topic(topic_id: Id, request: Request, principal: Principal = requires_any(*TAXONOMY)) -> Response:
    instance(request).topics.delete(principal.context(client_addr(request)), principal.org_id, topic_id)
    return Response(status_code=204)


@router.post("/api/topics/train", summary="Train the topic classifier on the topics' examples")
def train_topics(request: Request, principal: Principal = requires_any(*TAXONOMY)) -> dict[str, Any]:
    return asdict(instance(request).topics.train(principal.context(client_addr(request)), principal.org_id))


@router.get("/api/canned-replies", summary="The organisation's canned replies")
def list_canned(request: Request,
                principal: Principal = requires_any(P.RESPOND_TO_CUSTOMERS, P.MANAGE_AGENTS)) -> list[dict[str, Any]]:  # fmt: skip
    return canned.list_replies(instance(request).db, principal.org_id)


class CannedBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=120)
    body: str = Field(min_length=1, max_length=4000)


@router.post("/api/canned-replies", status_code=201, summary="Add a canned reply")
def add_canned(body: CannedBody, request: Request, principal: Principal = requires(P.MANAGE_AGENTS)) -> dict[str, Any]:
    return canned.add_reply(instance(request).db, principal.context(client_addr(request)), principal.org_id,
                            body.title, body.body)  # fmt: skip


@router.delete("/api/canned-replies/{reply_id}", status_code=204, summary="Delete a canned reply")
def delete_canned(reply_id: Id, request: Request, principal: Principal = requires(P.MANAGE_AGENTS)) -> Response:
    canned.delete_reply(instance(request).db, principal.context(client_addr(request)), principal.org_id, reply_id)
    return Response(status_code=204)
