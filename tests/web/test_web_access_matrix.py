"""Role x route matrix: every route declares exactly one access rule, the rules match the declared table, and each
role is really allowed or refused by the running app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from appliance.auth.roles import ROLE_PERMISSIONS, Permission, Role
from appliance.instance import Instance
from appliance.web.app import create_app
from appliance.web.deps import MONITORING, PUBLIC, SIGNED_IN, VISITOR, access_rule_of
from appliance.web.ratelimit import RateLimiter
from starlette.routing import WebSocketRoute
from tests.conftest import make_client, Seed, client_for

P = Permission


def _any(*permissions: Permission) -> str:
    return "|".join(p.value for p in permissions)


def _held(rule: str, held: frozenset[Permission]) -> bool | None:
    """Whether a role holding `held` passes the rule; None for a rule no role passes alone (visitor-only)."""
    names = [part for part in rule.split("|") if part != VISITOR]
    if not names:
        return None
    return any(Permission(name) in held for name in names)


# (method, path) -> access rule. A new route must be added here, with its permission, or this test fails.
MATRIX: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): MONITORING,
    ("POST", "/api/auth/login"): PUBLIC,
    ("POST", "/api/auth/logout"): SIGNED_IN,
    ("GET", "/api/auth/me"): SIGNED_IN,
    ("POST", "/api/auth/password"): SIGNED_IN,
    ("GET", "/api/users"): Permission.MANAGE_TEAM,
    ("POST", "/api/users"): Permission.MANAGE_TEAM,
    ("GET", "/api/users/{user_id}"): Permission.MANAGE_TEAM,
    ("PUT", "/api/users/{user_id}/role"): Permission.MANAGE_TEAM,
    ("POST", "/api/users/{user_id}/disable"): Permission.MANAGE_TEAM,
    ("GET", "/api/apikeys"): Permission.MANAGE_INTEGRATIONS,
    ("POST", "/api/apikeys"): Permission.MANAGE_INTEGRATIONS,
    ("DELETE", "/api/apikeys/{key_id}"): Permission.MANAGE_INTEGRATIONS,
    ("GET", "/api/settings"): Permission.MANAGE_SETTINGS,
    ("PUT", "/api/settings"): Permission.MANAGE_SETTINGS,
    ("GET", "/api/audit/events"): Permission.VIEW_AUDIT,
    ("GET", "/api/audit/verify"): Permission.VIEW_AUDIT,
    ("POST", "/api/audit/export"): Permission.EXPORT_AUDIT,
    ("GET", "/api/knowledge"): Permission.MANAGE_KNOWLEDGE_BASE,
    ("POST", "/api/knowledge"): Permission.MANAGE_KNOWLEDGE_BASE,
    ("GET", "/api/knowledge/{article_id}"): Permission.MANAGE_KNOWLEDGE_BASE,
    ("PUT", "/api/knowledge/{article_id}"): Permission.MANAGE_KNOWLEDGE_BASE,
    ("POST", "/api/knowledge/{article_id}/status"): Permission.MANAGE_KNOWLEDGE_BASE,
    ("GET", "/api/knowledge/{article_id}/versions"): Permission.MANAGE_KNOWLEDGE_BASE,
    ("GET", "/api/knowledge/{article_id}/diff"): Permission.MANAGE_KNOWLEDGE_BASE,
    ("POST", "/api/knowledge/{article_id}/versions/{version}/restore"): Permission.MANAGE_KNOWLEDGE_BASE,
    ("POST", "/api/knowledge/import"): Permission.MANAGE_KNOWLEDGE_BASE,  # multipart: a JSON body gets 400
    ("GET", "/help/{org_slug}/articles/{article_id}"): PUBLIC,
    ("GET", "/api/retrieval/search"): Permission.MANAGE_KNOWLEDGE_BASE,
    ("POST", "/api/chat/message"): f"{VISITOR}|{Permission.RESPOND_TO_CUSTOMERS.value}",
    ("GET", "/api/messages/{message_id}/provenance"): Permission.REVIEW_AI_RESPONSES,
    ("GET", "/api/knowledge/gaps"): Permission.MANAGE_KNOWLEDGE_BASE,
    ("GET", "/api/knowledge/flags"): Permission.MANAGE_KNOWLEDGE_BASE,
    ("POST", "/api/knowledge/flags/{flag_id}/approve"): Permission.MANAGE_KNOWLEDGE_BASE,
    ("POST", "/api/knowledge/flags/{flag_id}/reject"): Permission.MANAGE_KNOWLEDGE_BASE,
    ("GET", "/api/knowledge/golden"): Permission.MANAGE_KNOWLEDGE_BASE,
    ("POST", "/api/knowledge/golden"): Permission.MANAGE_KNOWLEDGE_BASE,
    ("DELETE", "/api/knowledge/golden/{golden_id}"): Permission.MANAGE_KNOWLEDGE_BASE,
    ("GET", "/api/knowledge/golden/run"): Permission.MANAGE_KNOWLEDGE_BASE,
    # conversations
    ("GET", "/api/conversations"): _any(P.VIEW_ALL_CONVERSATIONS, P.VIEW_ASSIGNED_CONVERSATIONS),
    ("GET", "/api/conversations/{conversation_id}"): _any(P.VIEW_ALL_CONVERSATIONS, P.VIEW_ASSIGNED_CONVERSATIONS),
    ("POST", "/api/conversations/{conversation_id}/escalate"): _any(P.RESPOND_TO_CUSTOMERS, P.ASSIGN_CONVERSATIONS),
    ("POST", "/api/conversations/{conversation_id}/takeover"): P.RESPOND_TO_CUSTOMERS,
    ("POST", "/api/conversations/{conversation_id}/release"): P.RESPOND_TO_CUSTOMERS,
    ("POST", "/api/conversations/{conversation_id}/messages"): P.RESPOND_TO_CUSTOMERS,
    ("POST", "/api/conversations/{conversation_id}/assign"): P.ASSIGN_CONVERSATIONS,
    ("PUT", "/api/conversations/{conversation_id}/priority"): P.ASSIGN_CONVERSATIONS,
    ("POST", "/api/conversations/{conversation_id}/resolve"): f"{VISITOR}|{P.MARK_RESOLVED.value}",
    ("POST", "/api/conversations/{conversation_id}/csat"): f"{VISITOR}|{P.RESPOND_TO_CUSTOMERS.value}",
    ("GET", "/api/customers/{customer_id}/history"): P.VIEW_CUSTOMER_HISTORY,
    ("PUT", "/api/customers/{customer_id}/value"): P.MANAGE_AGENTS,
    # routing
    ("GET", "/api/teams"): _any(P.MANAGE_AGENTS, P.MANAGE_TEAM, P.ASSIGN_CONVERSATIONS),
    ("POST", "/api/teams"): _any(P.MANAGE_AGENTS, P.MANAGE_TEAM),
    ("PUT", "/api/teams/{team_id}"): _any(P.MANAGE_AGENTS, P.MANAGE_TEAM),
    ("DELETE", "/api/teams/{team_id}"): _any(P.MANAGE_AGENTS, P.MANAGE_TEAM),
    ("GET", "/api/agents"): _any(P.MANAGE_AGENTS, P.MANAGE_TEAM, P.ASSIGN_CONVERSATIONS),
    ("PUT", "/api/agents/me"): P.RESPOND_TO_CUSTOMERS,
    ("PUT", "/api/agents/{user_id}"): _any(P.MANAGE_AGENTS, P.MANAGE_TEAM),
    ("GET", "/api/topics"): _any(P.CONFIGURE_ESCALATIONS, P.CONFIGURE_AI),
    ("POST", "/api/topics"): _any(P.CONFIGURE_ESCALATIONS, P.CONFIGURE_AI),
    ("PUT", "/api/topics/{topic_id}"): _any(P.CONFIGURE_ESCALATIONS, P.CONFIGURE_AI),
    ("DELETE", "/api/topics/{topic_id}"): _any(P.CONFIGURE_ESCALATIONS, P.CONFIGURE_AI),
    ("POST", "/api/topics/train"): _any(P.CONFIGURE_ESCALATIONS, P.CONFIGURE_AI),
    ("GET", "/api/canned-replies"): _any(P.RESPOND_TO_CUSTOMERS, P.MANAGE_AGENTS),
    ("POST", "/api/canned-replies"): P.MANAGE_AGENTS,
    ("DELETE", "/api/canned-replies/{reply_id}"): P.MANAGE_AGENTS,
    # widget
    ("GET", "/api/widget/keys"): P.MANAGE_SETTINGS,
    ("POST", "/api/widget/keys"): P.MANAGE_SETTINGS,
    ("PUT", "/api/widget/keys/{key_id}/theme"): P.MANAGE_SETTINGS,
    ("POST", "/api/widget/keys/{key_id}/rotate-secret"): P.MANAGE_SETTINGS,
    ("DELETE", "/api/widget/keys/{key_id}"): P.MANAGE_SETTINGS,
    ("POST", "/api/widget/session"): PUBLIC,
    ("GET", "/api/widget/snippet"): P.MANAGE_SETTINGS,
    ("GET", "/widget/v1/widget.js"): PUBLIC,
    ("GET", "/demo"): PUBLIC,
    ("GET", "/demo/page.css"): PUBLIC,
    ("GET", "/api/chat/conversations/{conversation_id}"): VISITOR,
    ("POST", "/api/chat/conversations/{conversation_id}/human"): VISITOR,
    ("POST", "/api/chat/messages/{message_id}/feedback"): VISITOR,
    # escalation rules
    ("GET", "/api/escalation-rules"): P.CONFIGURE_ESCALATIONS,
    ("POST", "/api/escalation-rules"): P.CONFIGURE_ESCALATIONS,
    ("GET", "/api/escalation-rules/{rule_id}"): P.CONFIGURE_ESCALATIONS,
    ("PUT", "/api/escalation-rules/{rule_id}"): P.CONFIGURE_ESCALATIONS,
    ("DELETE", "/api/escalation-rules/{rule_id}"): P.CONFIGURE_ESCALATIONS,
    ("POST", "/api/escalation-rules/reorder"): P.CONFIGURE_ESCALATIONS,
    ("POST", "/api/escalation-rules/test"): P.CONFIGURE_ESCALATIONS,
    # webhooks
    ("GET", "/api/webhooks"): P.MANAGE_INTEGRATIONS,
    ("POST", "/api/webhooks"): P.MANAGE_INTEGRATIONS,
    ("PUT", "/api/webhooks/{webhook_id}"): P.MANAGE_INTEGRATIONS,
    ("DELETE", "/api/webhooks/{webhook_id}"): P.MANAGE_INTEGRATIONS,
    ("POST", "/api/webhooks/{webhook_id}/rotate-secret"): P.MANAGE_INTEGRATIONS,
    ("GET", "/api/webhooks/{webhook_id}/deliveries"): P.MANAGE_INTEGRATIONS,
    ("POST", "/api/webhooks/deliveries/{delivery_id}/redeliver"): P.MANAGE_INTEGRATIONS,
    # analytics
    ("GET", "/api/analytics/dashboard"): P.VIEW_ANALYTICS,
    ("POST", "/api/analytics/rollup"): P.VIEW_ANALYTICS,
    ("GET", "/api/analytics/knowledge-gaps"): P.VIEW_ANALYTICS,
    ("PUT", "/api/messages/{message_id}/review"): P.REVIEW_AI_RESPONSES,
    ("DELETE", "/api/messages/{message_id}/review"): P.REVIEW_AI_RESPONSES,
    ("GET", "/api/reviews"): P.REVIEW_AI_RESPONSES,
    ("GET", "/api/reviews/export"): P.REVIEW_AI_RESPONSES,
    # two-step verification
    ("POST", "/api/auth/mfa/setup"): SIGNED_IN,
    ("POST", "/api/auth/mfa/enable"): SIGNED_IN,
    ("POST", "/api/auth/mfa/disable"): SIGNED_IN,
    ("DELETE", "/api/users/{user_id}/mfa"): P.MANAGE_TEAM,
    ("GET", "/console/account"): SIGNED_IN,
    ("POST", "/console/account/mfa/setup"): SIGNED_IN,
    ("POST", "/console/account/mfa/enable"): SIGNED_IN,
    ("POST", "/console/account/mfa/disable"): SIGNED_IN,
    ("POST", "/console/team/users/{user_id}/mfa-reset"): P.MANAGE_TEAM,
    # the web console (HTML pages and form posts)
    ("GET", "/console/login"): PUBLIC,
    ("POST", "/console/login"): PUBLIC,
    ("POST", "/console/logout"): SIGNED_IN,
    ("GET", "/console/"): SIGNED_IN,
    ("GET", "/console/static/{content_hash}/{name}"): PUBLIC,
    ("GET", "/console/inbox"): _any(P.VIEW_ALL_CONVERSATIONS, P.VIEW_ASSIGNED_CONVERSATIONS),
    ("POST", "/console/availability"): P.RESPOND_TO_CUSTOMERS,
    ("GET", "/console/conversations/{conversation_id}"): _any(P.VIEW_ALL_CONVERSATIONS, P.VIEW_ASSIGNED_CONVERSATIONS),
    ("GET", "/console/conversations/{conversation_id}/state"): _any(P.VIEW_ALL_CONVERSATIONS,
                                                                     P.VIEW_ASSIGNED_CONVERSATIONS),
    ("POST", "/console/conversations/{conversation_id}/takeover"): P.RESPOND_TO_CUSTOMERS,
    ("POST", "/console/conversations/{conversation_id}/release"): P.RESPOND_TO_CUSTOMERS,
    ("POST", "/console/conversations/{conversation_id}/reply"): P.RESPOND_TO_CUSTOMERS,
    ("POST", "/console/conversations/{conversation_id}/resolve"): P.MARK_RESOLVED,
    ("POST", "/console/conversations/{conversation_id}/assign"): P.ASSIGN_CONVERSATIONS,
    ("POST", "/console/conversations/{conversation_id}/notes"): _any(P.VIEW_ALL_CONVERSATIONS,
                                                                      P.VIEW_ASSIGNED_CONVERSATIONS),
    ("POST", "/console/conversations/{conversation_id}/read"): _any(P.VIEW_ALL_CONVERSATIONS,
                                                                     P.VIEW_ASSIGNED_CONVERSATIONS),
    # console: rules, team, settings, audit
    ("GET", "/console/rules"): P.CONFIGURE_ESCALATIONS,
    ("POST", "/console/rules"): P.CONFIGURE_ESCALATIONS,
    ("POST", "/console/rules/test"): P.CONFIGURE_ESCALATIONS,
    ("GET", "/console/rules/{rule_id}"): P.CONFIGURE_ESCALATIONS,
    ("POST", "/console/rules/{rule_id}"): P.CONFIGURE_ESCALATIONS,
    ("POST", "/console/rules/{rule_id}/active"): P.CONFIGURE_ESCALATIONS,
    ("POST", "/console/rules/{rule_id}/move"): P.CONFIGURE_ESCALATIONS,
    ("GET", "/console/team"): _any(P.MANAGE_TEAM, P.MANAGE_AGENTS),
    ("POST", "/console/team/users"): P.MANAGE_TEAM,
    ("POST", "/console/team/users/{user_id}/role"): P.MANAGE_TEAM,
    ("POST", "/console/team/users/{user_id}/disable"): P.MANAGE_TEAM,
    ("POST", "/console/team/teams"): _any(P.MANAGE_TEAM, P.MANAGE_AGENTS),
    ("POST", "/console/team/teams/{team_id}"): _any(P.MANAGE_TEAM, P.MANAGE_AGENTS),
    ("POST", "/console/team/agents/{user_id}"): _any(P.MANAGE_TEAM, P.MANAGE_AGENTS),
    ("POST", "/console/team/apikeys"): P.MANAGE_INTEGRATIONS,
    ("POST", "/console/team/apikeys/{key_id}/revoke"): P.MANAGE_INTEGRATIONS,
    ("GET", "/console/settings"): P.MANAGE_SETTINGS,
    ("POST", "/console/settings"): P.MANAGE_SETTINGS,
    ("POST", "/console/settings/widget-keys"): P.MANAGE_SETTINGS,
    ("POST", "/console/settings/widget-keys/{key_id}/theme"): P.MANAGE_SETTINGS,
    ("POST", "/console/settings/widget-keys/{key_id}/revoke"): P.MANAGE_SETTINGS,
    ("POST", "/console/settings/webhooks/deliveries/{delivery_id}/redeliver"): P.MANAGE_INTEGRATIONS,
    ("GET", "/console/audit"): P.VIEW_AUDIT,
    ("GET", "/console/audit/verify"): P.VIEW_AUDIT,
    ("POST", "/console/audit/export"): P.EXPORT_AUDIT,
    # console: knowledge editor
    ("GET", "/console/knowledge"): P.MANAGE_KNOWLEDGE_BASE,
    ("GET", "/console/knowledge/new"): P.MANAGE_KNOWLEDGE_BASE,
    ("POST", "/console/knowledge/new"): P.MANAGE_KNOWLEDGE_BASE,
    ("POST", "/console/knowledge/preview"): _any(P.EDIT_ARTICLES, P.MANAGE_KNOWLEDGE_BASE),
    ("GET", "/console/knowledge/import"): P.MANAGE_KNOWLEDGE_BASE,
    ("POST", "/console/knowledge/import"): P.MANAGE_KNOWLEDGE_BASE,
    ("GET", "/console/knowledge/flags"): P.MANAGE_KNOWLEDGE_BASE,
    ("POST", "/console/knowledge/flags/{flag_id}/approve"): P.MANAGE_KNOWLEDGE_BASE,
    ("POST", "/console/knowledge/flags/{flag_id}/reject"): P.MANAGE_KNOWLEDGE_BASE,
    ("GET", "/console/knowledge/{article_id}"): P.MANAGE_KNOWLEDGE_BASE,
    ("POST", "/console/knowledge/{article_id}"): P.MANAGE_KNOWLEDGE_BASE,
    ("POST", "/console/knowledge/{article_id}/status"): P.MANAGE_KNOWLEDGE_BASE,
    ("POST", "/console/knowledge/{article_id}/golden"): P.MANAGE_KNOWLEDGE_BASE,
    ("POST", "/console/knowledge/{article_id}/golden/{golden_id}/delete"): P.MANAGE_KNOWLEDGE_BASE,
    ("POST", "/console/knowledge/{article_id}/golden/run"): P.MANAGE_KNOWLEDGE_BASE,
    ("GET", "/console/knowledge/{article_id}/versions"): P.MANAGE_KNOWLEDGE_BASE,
    ("POST", "/console/knowledge/{article_id}/versions/{version}/restore"): P.MANAGE_KNOWLEDGE_BASE,
    # console: analytics, gaps, reviews
    ("GET", "/console/analytics"): P.VIEW_ANALYTICS,
    ("POST", "/console/analytics/rollup"): P.VIEW_ANALYTICS,
    ("GET", "/console/analytics/gaps"): P.VIEW_ANALYTICS,
    ("GET", "/console/reviews"): P.REVIEW_AI_RESPONSES,
    ("POST", "/console/reviews/{message_id}"): P.REVIEW_AI_RESPONSES,
    ("POST", "/console/reviews/{message_id}/clear"): P.REVIEW_AI_RESPONSES,
}
# The WebSockets of the real-time hub: each authenticates in its handler (a visitor session, a console session).
WEBSOCKETS = {"/ws/widget": VISITOR, "/ws/console": SIGNED_IN}
# Framework pages that carry no data: the OpenAPI schema and its viewers.
DOC_PATHS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}

# Request bodies that pass validation, so a refusal can only come from the access check.
BODIES: dict[tuple[str, str], dict[str, object]] = {
    ("POST", "/api/users"): {"email": "new.person@north.example", "password": "a fine long password", "role": "agent"},
    ("PUT", "/api/users/{user_id}/role"): {"role": "agent"},
    ("POST", "/api/apikeys"): {"name": "crm", "scopes": ["manage_integrations"]},
    ("PUT", "/api/settings"): {"timezone": "Europe/Paris"},
    ("POST", "/api/audit/export"): {},
    ("POST", "/api/knowledge"): {"title": "T", "content": "C"},
    ("PUT", "/api/knowledge/{article_id}"): {"title": "T", "content": "C2"},
    ("POST", "/api/knowledge/{article_id}/status"): {"status": "published"},
    ("POST", "/api/chat/message"): {"message": "How do I reset my password?"},
    ("POST", "/api/knowledge/golden"): {"question": "Can I park for free?"},
    ("POST", "/api/conversations/{conversation_id}/escalate"): {},
    ("POST", "/api/conversations/{conversation_id}/messages"): {"text": "Hello"},
    ("POST", "/api/conversations/{conversation_id}/assign"): {"agent_id": None},
    ("PUT", "/api/conversations/{conversation_id}/priority"): {"priority": "high"},
    ("POST", "/api/conversations/{conversation_id}/csat"): {"rating": 5},
    ("PUT", "/api/customers/{customer_id}/value"): {"lifetime_value": 10},
    ("POST", "/api/teams"): {"name": "Billing"},
    ("PUT", "/api/teams/{team_id}"): {"name": "Billing"},
    ("PUT", "/api/agents/me"): {"availability": "away"},
    ("PUT", "/api/agents/{user_id}"): {"capacity": 3},
    ("POST", "/api/topics"): {"name": "Billing", "examples": ["a", "b", "c"]},
    ("PUT", "/api/topics/{topic_id}"): {"name": "Billing", "examples": ["a", "b", "c"]},
    ("POST", "/api/canned-replies"): {"title": "Hi", "body": "Hello there"},
    ("POST", "/api/widget/keys"): {},
    ("PUT", "/api/widget/keys/{key_id}/theme"): {"theme": {}},
    ("POST", "/api/escalation-rules"): {"name": "r", "trigger_type": "keyword", "trigger_value": "refund",
                                        "action": "escalate"},
    ("PUT", "/api/escalation-rules/{rule_id}"): {"name": "r", "trigger_type": "keyword", "trigger_value": "refund",
                                                 "action": "escalate"},
    ("POST", "/api/escalation-rules/reorder"): {"ids": []},
    ("POST", "/api/webhooks"): {"url": "http://127.0.0.1:9/hook", "events": ["message.created"]},
    ("PUT", "/api/webhooks/{webhook_id}"): {"url": "http://127.0.0.1:9/hook", "events": ["message.created"]},
    ("PUT", "/api/messages/{message_id}/review"): {"verdict": "correct"},
}


def declared_rules(route: APIRoute) -> list[str]:
    rules = []
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if dep.call is not None and (rule := access_rule_of(dep.call)) is not None:
            rules.append(rule)
            continue  # a permission check depends on signed_in itself; count the outermost rule only
        stack.extend(dep.dependencies)
    return rules


def iter_routes(routes: list[BaseRoute]) -> Iterator[BaseRoute]:
    """Flatten included routers (FastAPI keeps them as lazy branches holding the original APIRoutes)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from iter_routes(included.routes)
        else:
            yield route


def test_every_route_declares_exactly_the_matrix_rule(inst: Instance) -> None:
    app = create_app(inst)
    seen = {}
    sockets: set[str] = set()
    for route in iter_routes(app.routes):
        if isinstance(route, WebSocketRoute):
            sockets.add(route.path)
            continue
        if not isinstance(route, APIRoute):
            assert getattr(route, "path", None) in DOC_PATHS, f"unexpected non-API route {route!r}"
            continue
        for method in route.methods:
            rules = declared_rules(route)
            assert len(rules) == 1, f"{method} {route.path} declares {rules or 'no'} access rule(s)"
            seen[(method, route.path)] = rules[0]
    assert seen == {k: str(v) for k, v in MATRIX.items()}
    assert sockets == set(WEBSOCKETS)


def _concrete(path: str, seed_ids: dict[str, int]) -> str:
    return path.format(**seed_ids)


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_each_role_is_allowed_exactly_its_permissions(inst: Instance, seed: Seed, role: str) -> None:
    client = client_for(inst, Seed.email(role))
    client.app.state.rate_limiter = RateLimiter(100_000)  # type: ignore[attr-defined]  # every route, in one minute
    me = client.get("/api/auth/me").json()
    agent_id = next(u["id"] for u in client_for(inst, Seed.email("admin")).get("/api/users").json()
                    if u["email"] == Seed.email("agent"))  # fmt: skip
    ids = {"user_id": agent_id, "key_id": 999999, "article_id": 999999, "version": 1, "org_slug": "north",
           "message_id": 999999, "golden_id": 999999, "flag_id": 999999, "conversation_id": 999999,
           "customer_id": 999999, "team_id": 999999, "topic_id": 999999, "reply_id": 999999, "rule_id": 999999,
           "webhook_id": 999999, "delivery_id": 999999}  # fmt: skip
    held = ROLE_PERMISSIONS[Role(role)]
    assert set(me["permissions"]) == {p.value for p in held}
    for (method, path), rule in MATRIX.items():
        if rule in (PUBLIC, MONITORING, SIGNED_IN) or path.endswith("/users/{user_id}/disable"):
            continue
        allowed = _held(rule, held)
        if allowed is None:
            continue  # visitor-only: tested with visitor sessions
        response = client.request(method, _concrete(path, ids), json=BODIES.get((method, path)))
        if allowed:
            assert response.status_code != 403, f"{role} refused {method} {path}: {response.text}"
        else:
            assert response.status_code == 403, f"{role} got {response.status_code} on {method} {path}"
            if path.startswith("/console/"):
                assert "Not allowed" in response.text  # the console answers with a page
            else:
                assert response.json()["code"] == "forbidden"


def test_denials_are_audited(inst: Instance, seed: Seed) -> None:
    agent = client_for(inst, Seed.email("agent"))
    assert agent.get("/api/users").status_code == 403
    compliance = client_for(inst, Seed.email("compliance_officer"))
    events = compliance.get("/api/audit/events", params={"action": "auth.permission.denied"}).json()
    assert len(events) == 1
    assert events[0]["details"] == {"permission": "manage_team", "route": "GET /api/users"}
    assert events[0]["outcome"] == "denied"


def test_unauthenticated_requests_are_refused_everywhere_but_public(inst: Instance, seed: Seed) -> None:
    client = make_client(create_app(inst))
    for (method, path), rule in MATRIX.items():
        if rule in (PUBLIC, MONITORING):
            continue
        ids = {"user_id": 1, "key_id": 1, "article_id": 1, "version": 1, "org_slug": "north", "message_id": 1,
               "golden_id": 1, "flag_id": 1, "conversation_id": 1, "customer_id": 1, "team_id": 1, "topic_id": 1,
               "reply_id": 1, "rule_id": 1, "webhook_id": 1, "delivery_id": 1}  # fmt: skip
        response = client.request(method, _concrete(path, ids), json=BODIES.get((method, path), {}),
                                  follow_redirects=False)  # fmt: skip
        if path.startswith("/console/"):  # the console sends people to its sign-in page instead
            assert response.status_code == 303, f"{method} {path} answered {response.status_code} without sign-in"
            assert response.headers["location"].startswith("/console/login?next=")
            continue
        assert response.status_code == 401, f"{method} {path} answered {response.status_code} without sign-in"
        assert response.json()["code"] == "not_authenticated"
