"""Every integer a request carries (path, query, JSON body, form) is bounded to what SQLite's 64-bit INTEGER holds,
so 2**63 and 2**64 answer 404 or 422, never a 500 from binding it (OverflowError). The first two tests walk the app's
routes, so a new route with a bare `int` fails here; the others send the numbers that forms and the widget's socket
carry as text or JSON and parse by hand."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.params import Form
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from appliance.auth.roles import ROLE_PERMISSIONS, Permission, Role
from appliance.conversations import widget
from appliance.instance import Instance, cli_context
from appliance.web.app import create_app
from appliance.web.deps import MONITORING, PUBLIC, SIGNED_IN, VISITOR, VISITOR_HEADER
from appliance.web.params import MAX_INT, MIN_INT
from appliance.web.ratelimit import RateLimiter
from tests.conftest import Seed, login
from tests.web.test_web_access_matrix import BODIES, declared_rules, iter_routes

TOO_BIG = (2**63, 2**64)
P = Permission
# Bodies that pass validation apart from the integer under test, beyond the access matrix's.
EXTRA_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/widget/session"): {"key": "KEY",
                                      "identity": {"user_id": "u1", "timestamp": 0, "signature": "0" * 64}},
}


class Flat:
    """A route's parameters, its dependencies' included."""

    def __init__(self, dependant: Dependant) -> None:
        self.path_params, self.query_params, self.body_params = [], [], []  # type: ignore[var-annotated]
        stack = [dependant]
        while stack:
            dep = stack.pop()
            self.path_params += dep.path_params
            self.query_params += dep.query_params
            self.body_params += dep.body_params
            stack.extend(dep.dependencies)


Leaf = tuple[str | int, ...]  # where an integer sits inside a JSON value: keys, and 0 for a list's item


def _integer_leaves(schema: dict[str, Any], defs: dict[str, Any],
                    at: Leaf = ()) -> Iterator[tuple[Leaf, dict[str, Any]]]:  # fmt: skip
    if "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    for branch in schema.get("anyOf", []) + schema.get("allOf", []) + schema.get("oneOf", []):
        yield from _integer_leaves(branch, defs, at)
    if schema.get("type") == "integer":
        yield at, schema
    for name, prop in schema.get("properties", {}).items():
        yield from _integer_leaves(prop, defs, (*at, name))
    if isinstance(schema.get("items"), dict):
        yield from _integer_leaves(schema["items"], defs, (*at, 0))
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _integer_leaves(schema["additionalProperties"], defs, (*at, "any"))


def _fields(route: APIRoute) -> Iterator[tuple[str, Any, Leaf, dict[str, Any]]]:
    """(where, field, leaf, schema) for every integer the route validates, as FastAPI really validates it."""
    flat = Flat(route.dependant)
    groups = (("path", flat.path_params), ("query", flat.query_params), ("body", flat.body_params))
    for where, fields in groups:
        for field in fields:
            schema = field._type_adapter.json_schema()  # what validation enforces, not what the docs say
            for leaf, node in _integer_leaves(schema, schema.get("$defs", {})):
                kind = "form" if isinstance(field.field_info, Form) else where
                yield kind, field, leaf, node


def _routes(inst: Instance) -> list[tuple[str, APIRoute]]:
    app = create_app(inst)
    return [(method, route) for route in iter_routes(app.routes) if isinstance(route, APIRoute)
            for method in sorted(route.methods)]  # fmt: skip


def test_every_integer_a_route_takes_is_bounded_to_64_bits(inst: Instance) -> None:
    unbounded = []
    count = 0
    for method, route in _routes(inst):
        for where, field, leaf, node in _fields(route):
            count += 1
            low = node.get("minimum", node.get("exclusiveMinimum"))
            high = node.get("maximum", node.get("exclusiveMaximum"))
            if low is None or high is None or low < MIN_INT or high > MAX_INT:
                unbounded.append(f"{method} {route.path}: {where} {field.name}{list(leaf) or ''} [{low}, {high}]")
    assert count > 50  # the walk finds them
    assert unbounded == [], "use appliance.web.params' Id / Count / Int:\n" + "\n".join(unbounded)
    # and the API's schema says so
    schema = TestClient(create_app(inst)).get("/openapi.json").json()
    documented = [(path, param["name"], branch.get("maximum")) for path, ops in schema["paths"].items()
                  for op in ops.values() for param in op.get("parameters", [])
                  for branch in param["schema"].get("anyOf", [param["schema"]]) if branch.get("type") == "integer"]
    assert len(documented) > 30 and all(high is not None and high <= MAX_INT for _, _, high in documented), documented
    conversation = schema["paths"]["/api/conversations/{conversation_id}"]["get"]["parameters"][0]["schema"]
    assert (conversation["minimum"], conversation["maximum"]) == (1, MAX_INT)


class Clients:
    """One client per access rule's holder: a role with one of its permissions, or a visitor session."""

    def __init__(self, inst: Instance, seed: Seed) -> None:
        self.inst = inst
        self.widget_key = widget.create_key(inst.db, cli_context(seed.north), seed.north)[0].public_key
        self.made: dict[str, TestClient] = {}

    def holder(self, rule: str) -> str:
        names = rule.split("|")
        if VISITOR in names:
            return VISITOR
        if rule in (PUBLIC, MONITORING, SIGNED_IN):
            return Role.ADMIN.value
        return next(r.value for r in Role if any(Permission(n) in ROLE_PERMISSIONS[r] for n in names))

    def __call__(self, rule: str) -> TestClient:
        who = self.holder(rule)
        if who not in self.made:
            app = create_app(self.inst)
            app.state.rate_limiter = RateLimiter(100_000)  # every route twice, in one minute
            c = TestClient(app, client=("127.0.0.1", 50000), raise_server_exceptions=False)
            if who == VISITOR:
                c.headers[VISITOR_HEADER] = self.session(c)
            else:
                c.headers["X-CSRF-Token"] = login(c, Seed.email(who))
            self.made[who] = c
        return self.made[who]

    def session(self, c: TestClient) -> str:
        return str(c.post("/api/widget/session", json={"key": self.widget_key}).json()["session"])


@pytest.fixture
def clients(inst: Instance, seed: Seed, caplog: pytest.LogCaptureFixture) -> Iterator[Clients]:
    """The clients, and afterwards: the server logged no unhandled error ("Exception in ASGI application" is what
    uvicorn writes for one; in process the app's own handler logs "unhandled error" first)."""
    caplog.set_level(logging.ERROR)
    appliance_log = logging.getLogger("appliance")
    appliance_log.addHandler(caplog.handler)  # the app's logger need not propagate to the root
    try:
        yield Clients(inst, seed)
    finally:
        appliance_log.removeHandler(caplog.handler)
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert [m for m in logged if "Exception in ASGI application" in m or "unhandled error" in m
            or "frame failed" in m] == [], logged  # fmt: skip


def test_every_integer_parameter_of_every_route_survives_2_63_and_2_64(inst: Instance, clients: Clients) -> None:
    failures, sent = [], 0
    for method, route in _routes(inst):
        fields = list(_fields(route))
        if not fields:
            continue
        rules = declared_rules(route)
        c = clients(rules[0] if rules else PUBLIC)
        for where, field, leaf, _ in fields:
            for value in TOO_BIG:
                status = _send(c, method, route, where, field.alias, leaf, value, clients.widget_key)
                sent += 1
                if status >= 500:
                    failures.append(f"{method} {route.path} {where} {field.alias}{list(leaf) or ''}={value}: {status}")
    assert sent > 100
    assert failures == [], "\n".join(failures)


# Ids and numbers the console's forms and filters carry as text, parsed by hand (a select's value, an empty box).
TEXT_NUMBERS: list[tuple[str, str, str, dict[str, str]]] = [
    (P.VIEW_ANALYTICS, "GET", "/console/analytics", {"team": "{big}"}),
    (P.VIEW_ANALYTICS, "POST", "/console/analytics/rollup", {"since": "2030-03-04", "until": "2030-03-06",
                                                              "team": "{big}"}),
    (P.ASSIGN_CONVERSATIONS, "POST", "/console/conversations/1/assign", {"agent_id": "{big}"}),
    (P.CONFIGURE_ESCALATIONS, "POST", "/console/rules", {"name": "r", "trigger_type": "keyword",
                                                          "trigger_value": "refund", "target_team_id": "{big}"}),
    (P.CONFIGURE_ESCALATIONS, "POST", "/console/rules/test", {"sample_text": "hi", "sample_failures": "{big}"}),
    (P.CONFIGURE_ESCALATIONS, "POST", "/console/rules/test", {"sample_text": "hi", "sample_confidence": "{big}"}),
    (P.MANAGE_SETTINGS, "POST", "/console/settings", {"answer_threshold": "{big}"}),
    (P.MANAGE_SETTINGS, "POST", "/console/settings", {"answer_threshold": "50", "emergency_article_id": "{big}"}),
]  # fmt: skip


@pytest.mark.parametrize("big", [str(2**63), str(2**64), "1e400", "nan", "\u00b2"])
def test_numbers_typed_as_text_are_refused_not_failed(clients: Clients, big: str) -> None:
    for permission, method, path, form in TEXT_NUMBERS:
        c = clients(permission.value)
        values = {k: v.replace("{big}", big) for k, v in form.items()}
        if method == "GET":
            response = c.get(path, params=values)
        else:
            response = c.post(path, data={**values, "csrf_token": c.headers["X-CSRF-Token"]})
        assert response.status_code < 500, (method, path, values, response.status_code)


def test_the_widget_socket_refuses_ids_past_64_bits(clients: Clients) -> None:
    c = clients(VISITOR)
    with c.websocket_connect("/ws/widget") as ws:
        ws.send_json({"type": "hello", "session": c.headers[VISITOR_HEADER]})
        assert ws.receive_json()["type"] == "ready"
        for value in TOO_BIG:
            for frame in ({"type": "resume", "conversation_id": value}, {"type": "human", "conversation_id": value},
                          {"type": "feedback", "message_id": value, "value": "up"},
                          {"type": "message", "client_id": "c1", "text": "hi", "conversation_id": value}):  # fmt: skip
                ws.send_json(frame)
                answer = ws.receive_json()
                assert answer["type"] == "error" and answer["status"] == 422, (frame, answer)


def _placed(base: Any, leaf: Leaf, value: int) -> Any:
    if not leaf:
        return value
    head, rest = leaf[0], leaf[1:]
    if head == 0:
        return [_placed(None, rest, value)]
    out = dict(base) if isinstance(base, dict) else {}
    out[str(head)] = _placed(out.get(str(head)), rest, value)
    return out


def _send(c: TestClient, method: str, route: APIRoute, where: str, name: str, leaf: Leaf, value: int,
          widget_key: str) -> int:  # fmt: skip
    flat = Flat(route.dependant)
    path_values = {f.alias: ("north" if f.alias == "org_slug" else 1) for f in flat.path_params}
    query = {f.alias: 1 for f in flat.query_params if f.field_info.is_required()}
    body: Any = None
    form: dict[str, Any] | None = None
    if where == "path":
        path_values[name] = value
    elif where == "query":
        query[name] = value
    elif where == "form":
        form = {"csrf_token": c.headers.get("X-CSRF-Token", ""), name: value}
    else:
        base = EXTRA_BODIES.get((method, route.path), BODIES.get((method, route.path), {}))
        base = {k: (widget_key if v == "KEY" else v) for k, v in base.items()}
        json_fields = [f for f in flat.body_params if not isinstance(f.field_info, Form)]
        embedded = len(json_fields) > 1 or getattr(json_fields[0].field_info, "embed", False)
        body = _placed({name: base} if embedded else base, ((name,) if embedded else ()) + leaf, value)
    url = route.path.format(**path_values)
    response = c.request(method, url, params=query, json=body, data=form)
    return response.status_code

