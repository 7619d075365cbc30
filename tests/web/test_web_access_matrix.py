"""Role x route matrix: every route declares exactly one access rule, the rules match the declared table, and each
role is really allowed or refused by the running app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute
from fastapi.testclient import TestClient

from appliance.auth.roles import ROLE_PERMISSIONS, Permission, Role
from appliance.instance import Instance
from appliance.web.app import create_app
from appliance.web.deps import MONITORING, PUBLIC, SIGNED_IN, access_rule_of
from tests.conftest import make_client, Seed, client_for

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
    ("POST", "/api/chat/message"): Permission.RESPOND_TO_CUSTOMERS,
    ("GET", "/api/messages/{message_id}/provenance"): Permission.REVIEW_AI_RESPONSES,
    ("GET", "/api/knowledge/gaps"): Permission.MANAGE_KNOWLEDGE_BASE,
    ("GET", "/api/knowledge/flags"): Permission.MANAGE_KNOWLEDGE_BASE,
    ("POST", "/api/knowledge/flags/{flag_id}/approve"): Permission.MANAGE_KNOWLEDGE_BASE,
    ("POST", "/api/knowledge/flags/{flag_id}/reject"): Permission.MANAGE_KNOWLEDGE_BASE,
    ("GET", "/api/knowledge/golden"): Permission.MANAGE_KNOWLEDGE_BASE,
    ("POST", "/api/knowledge/golden"): Permission.MANAGE_KNOWLEDGE_BASE,
    ("DELETE", "/api/knowledge/golden/{golden_id}"): Permission.MANAGE_KNOWLEDGE_BASE,
    ("GET", "/api/knowledge/golden/run"): Permission.MANAGE_KNOWLEDGE_BASE,
}
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
    for route in iter_routes(app.routes):
        if not isinstance(route, APIRoute):
            assert getattr(route, "path", None) in DOC_PATHS, f"unexpected non-API route {route!r}"
            continue
        for method in route.methods:
            rules = declared_rules(route)
            assert len(rules) == 1, f"{method} {route.path} declares {rules or 'no'} access rule(s)"
            seen[(method, route.path)] = rules[0]
    assert seen == {k: str(v) for k, v in MATRIX.items()}


def _concrete(path: str, seed_ids: dict[str, int]) -> str:
    return path.format(**seed_ids)


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_each_role_is_allowed_exactly_its_permissions(inst: Instance, seed: Seed, role: str) -> None:
    client = client_for(inst, Seed.email(role))
    me = client.get("/api/auth/me").json()
    agent_id = next(u["id"] for u in client_for(inst, Seed.email("admin")).get("/api/users").json()
                    if u["email"] == Seed.email("agent"))  # fmt: skip
    ids = {"user_id": agent_id, "key_id": 999999, "article_id": 999999, "version": 1, "org_slug": "north",
           "message_id": 999999, "golden_id": 999999, "flag_id": 999999}  # fmt: skip
    held = ROLE_PERMISSIONS[Role(role)]
    assert set(me["permissions"]) == {p.value for p in held}
    for (method, path), rule in MATRIX.items():
        if rule in (PUBLIC, MONITORING, SIGNED_IN) or (method, path) == ("POST", "/api/users/{user_id}/disable"):
            continue
        response = client.request(method, _concrete(path, ids), json=BODIES.get((method, path)))
        if Permission(rule) in held:
            assert response.status_code != 403, f"{role} refused {method} {path}: {response.text}"
        else:
            assert response.status_code == 403, f"{role} got {response.status_code} on {method} {path}"
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
               "golden_id": 1, "flag_id": 1}  # fmt: skip
        response = client.request(method, _concrete(path, ids), json=BODIES.get((method, path), {}))
        assert response.status_code == 401, f"{method} {path} answered {response.status_code} without sign-in"
        assert response.json()["code"] == "not_authenticated"
