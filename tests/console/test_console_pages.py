"""The console's pages through the app in-process: who may open what (checked on the server, every role), where
an anonymous or expired visitor is sent, the navigation each role sees, CSRF on every form the console has, sign-in
without user enumeration, sign-out (here and everywhere), the security headers on every response, the assets, the
inbox's fragment, filters and unread counts, and internal notes kept from the customer."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from httpx import Response

from appliance.auth.roles import ROLE_PERMISSIONS, Permission, Role
from appliance.console import assets
from appliance.console.render import SECTIONS
from appliance.conversations import views
from appliance.conversations.flow import Flow
from appliance.instance import Instance, cli_context
from appliance.web.app import create_app
from appliance.web.deps import MONITORING, PUBLIC, SESSION_COOKIE, SIGNED_IN
from appliance.web.ratelimit import RateLimiter
from tests.conftest import PASSWORD, ROLES, Seed, login, make_client
from tests.web.test_web_access_matrix import declared_rules, iter_routes

P = Permission
VIEW = {P.VIEW_ALL_CONVERSATIONS, P.VIEW_ASSIGNED_CONVERSATIONS}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' "
       "ws://testserver; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")  # fmt: skip
KB = {P.MANAGE_KNOWLEDGE_BASE}
# The navigation each role must see.
NAV = {"admin": ["Inbox", "Knowledge", "Team", "Settings", "Analytics"],
       "support_manager": ["Inbox", "Rules", "Team", "Analytics", "Reviews"],
       "agent": ["Inbox"], "knowledge_editor": ["Knowledge"], "compliance_officer": ["Audit"]}  # fmt: skip


@dataclass
class World:
    inst: Instance
    seed: Seed
    waiting: int  # escalated, in the organisation-wide queue: every agent of north sees it
    staff: dict[str, int]


@pytest.fixture
def world(inst: Instance, seed: Seed) -> World:
    flow, ctx = Flow(inst.db, None, responder="echo"), cli_context(seed.north)
    received, _ = flow.ask(ctx, seed.north, "I was charged twice for my visit", sender="visitor:v1", visitor_id="v1")
    flow.escalate(ctx, seed.north, received.conversation_id, "the customer asked for a person",
                  trigger="customer_request", visitor_id="v1")  # fmt: skip
    with inst.db.read() as conn:
        staff = {r["email"]: int(r["id"]) for r in conn.execute("SELECT id, email FROM users")}
    return World(inst, seed, received.conversation_id, staff)


def console(inst: Instance, role: str | None = None) -> tuple[TestClient, str]:
    """A browser-like client (no CSRF header), signed in as the role when given; and its CSRF token."""
    client = make_client(create_app(inst))
    token = login(client, Seed.email(role)) if role else ""
    return client, token


def secured(response: Response) -> Response:
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"
    return response


def pages(world: World) -> dict[str, set[Permission] | None]:
    """Every console page, with the permissions that open it (None: any signed-in person)."""
    c = world.waiting
    return {"/console/inbox": VIEW, f"/console/conversations/{c}": VIEW, f"/console/conversations/{c}/state": VIEW,
            "/console/inbox?queue=waiting&status=escalated": VIEW, "/console/": None, "/console/knowledge": KB,
            "/console/knowledge/new?title=Fees": KB, "/console/knowledge/import": KB,
            "/console/knowledge/flags": KB,
            "/console/analytics": {P.VIEW_ANALYTICS}, "/console/analytics/gaps": {P.VIEW_ANALYTICS},
            "/console/reviews": {P.REVIEW_AI_RESPONSES}}  # fmt: skip


def nav_labels(html: str) -> list[str]:
    nav = re.search(r'<nav class="nav" aria-label="Console">(.*?)</nav>', html, re.S)
    assert nav is not None
    return re.findall(r"<a [^>]*>([^<]+)</a>", nav.group(1))


@pytest.mark.parametrize("role", ROLES)
def test_each_role_opens_its_pages_is_refused_the_others_and_sees_only_its_navigation(world: World, role: str) -> None:
    client, _ = console(world.inst, role)
    held = ROLE_PERMISSIONS[Role(role)]
    for path, needs in pages(world).items():
        response = secured(client.get(path, follow_redirects=False))
        if needs is None:
            expected = 303 if VIEW & held else 200  # the inbox is home for those who handle conversations
        else:
            expected = 200 if needs & held else 403
        assert response.status_code == expected, f"{role} got {response.status_code} on {path}"
        if expected == 403:
            assert "Not allowed" in response.text and "<html" in response.text  # a page, not a redirect loop
        if expected == 200 and "<html" in response.text:  # a page (the state is a fragment)
            assert nav_labels(response.text) == NAV[role]
    derived = [s.label for s in SECTIONS if s.path and s.permissions and set(s.permissions) & held]
    assert derived == NAV[role]


def test_denied_pages_are_audited(world: World) -> None:
    client, _ = console(world.inst, "knowledge_editor")
    assert client.get("/console/inbox").status_code == 403
    with world.inst.db.read() as conn:
        details = conn.execute("SELECT details FROM audit_events WHERE action = 'auth.permission.denied'").fetchone()
    assert details is not None and "GET /console/inbox" in details[0]


def test_anonymous_visitors_are_sent_to_sign_in_and_come_back(world: World) -> None:
    client, _ = console(world.inst)
    for path in pages(world):
        response = secured(client.get(path, follow_redirects=False))
        assert response.status_code == 303
        assert response.headers["location"].startswith("/console/login?next=")
    to = client.get("/console/inbox?status=any", follow_redirects=False).headers["location"]
    assert to == "/console/login?next=%2Fconsole%2Finbox%3Fstatus%3Dany"
    form = client.get(to)
    assert form.status_code == 200 and 'name="next" value="/console/inbox?status=any"' in form.text
    signed = client.post("/console/login", data={"email": Seed.email("agent"), "password": PASSWORD,
                                                 "csrf_token": form_token(form), "next": "/console/inbox?status=any"},
                         follow_redirects=False)  # fmt: skip
    assert signed.status_code == 303 and signed.headers["location"] == "/console/inbox?status=any"
    assert SESSION_COOKIE in signed.headers["set-cookie"] and "HttpOnly" in signed.headers["set-cookie"]
    assert client.get("/console/inbox").status_code == 200


def form_token(page: Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/api/users", "/console/login"])
def test_sign_in_never_sends_you_off_the_console(world: World, target: str) -> None:
    client, _ = console(world.inst)
    form = client.get("/console/login")
    signed = client.post("/console/login", data={"email": Seed.email("agent"), "password": PASSWORD,
                                                 "csrf_token": form_token(form), "next": target},
                         follow_redirects=False)  # fmt: skip
    assert signed.headers["location"] == "/console/"


def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(world: World) -> None:
    client, _ = console(world.inst)
    answers = []
    for email in (Seed.email("agent"), "nobody@north.example"):
        form = client.get("/console/login")
        response = secured(client.post("/console/login", data={"email": email, "password": "not the password!",
                                                                "csrf_token": form_token(form)}))  # fmt: skip
        assert response.status_code == 401
        assert "Wrong email or password." in response.text
        assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
        answers.append(response.text.replace(email, "EMAIL"))
    assert answers[0].split('name="csrf_token"')[0] == answers[1].split('name="csrf_token"')[0]
    with world.inst.db.read() as conn:
        assert conn.execute("SELECT count(*) FROM audit_events WHERE action = 'auth.login.failed'").fetchone()[0] == 2
        assert conn.execute("SELECT count(*) FROM sessions").fetchone()[0] == 0


def test_sign_in_is_rate_limited_like_the_api(inst: Instance, seed: Seed) -> None:
    client, _ = console(inst)
    client.app.state.rate_limiter = RateLimiter(3)  # type: ignore[attr-defined]
    statuses = [client.get("/console/login").status_code for _ in range(4)]
    assert statuses[:3] == [200, 200, 200] and statuses[3] == 429


def _fingerprint(inst: Instance) -> dict[str, Any]:
    """Everything a console form could change (sessions by count: a request may refresh last_seen_at)."""
    with inst.db.read() as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                             " AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '%fts%'")]  # fmt: skip
        counts = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
        rows = {t: [tuple(r) for r in conn.execute(f"SELECT * FROM {t} ORDER BY 1")]
                for t in ("conversations", "agents", "conversation_notes", "conversation_reads")}  # fmt: skip
    return {"counts": counts, "rows": rows}


FORMS: dict[str, dict[str, str]] = {
    "/console/login": {"email": Seed.email("agent"), "password": PASSWORD},
    "/console/logout": {"everywhere": "true"},
    "/console/availability": {"availability": "online"},
    "/console/conversations/{conversation_id}/reply": {"text": "Hello", "client_id": "c-1"},
    "/console/conversations/{conversation_id}/assign": {"agent_id": ""},
    "/console/conversations/{conversation_id}/notes": {"body": "A note"},
    "/console/conversations/{conversation_id}/read": {"message_id": "1"},
    "/console/analytics/rollup": {"since": "2030-03-04", "until": "2030-03-06"},
    "/console/reviews/{message_id}": {"verdict": "correct"},
}


# Path parameters of forms that act on a record: one that does not exist, so a form that passes the CSRF check
# changes nothing another form's test relies on.
ABSENT_IDS = {"rule_id": 999999, "user_id": 999999, "team_id": 999999, "key_id": 999999, "delivery_id": 999999,
              "article_id": 1, "golden_id": 1, "flag_id": 1, "version": 1}  # fmt: skip


def console_posts(inst: Instance) -> list[APIRoute]:
    """Every POST route under /console, read from the app itself: a new form is covered without being listed."""
    found = [r for r in iter_routes(create_app(inst).routes)
             if isinstance(r, APIRoute) and r.path.startswith("/console") and "POST" in r.methods]  # fmt: skip
    assert {r.path for r in found} >= set(FORMS)
    return found


def _role_for(route: APIRoute) -> str:
    """A role the route lets in, so a refusal can only come from the CSRF check."""
    rule = declared_rules(route)[0]
    if rule in (PUBLIC, MONITORING, SIGNED_IN):
        return "agent"
    needed = {Permission(p) for p in rule.split("|")}
    return next(r for r in ROLES if needed & ROLE_PERMISSIONS[Role(r)])


def test_every_console_form_is_refused_without_the_csrf_token_and_changes_nothing(world: World) -> None:
    with world.inst.db.read() as conn:
        answer = conn.execute("SELECT max(id) FROM messages WHERE role = 'ai'").fetchone()[0]
    for route in console_posts(world.inst):
        path = route.path.format_map({**ABSENT_IDS, "conversation_id": world.waiting, "message_id": answer})
        client, token = console(world.inst, _role_for(route) if route.path != "/console/login" else None)
        form = FORMS.get(route.path, {})
        before = _fingerprint(world.inst)
        for sent in ({}, {"csrf_token": "not-the-token"}):
            response = secured(client.post(path, data={**form, **sent}, follow_redirects=False))
            assert response.status_code == 403, f"POST {route.path} without a valid token: {response.status_code}"
            assert "This form has expired" in response.text
            assert _fingerprint(world.inst) == before, f"POST {route.path} changed something without a token"
        if route.path == "/console/login":
            token = form_token(client.get("/console/login"))
        passed = client.post(path, data={**form, "csrf_token": token}, follow_redirects=False)
        assert "This form has expired" not in passed.text, f"POST {route.path} refused its own token"


def test_an_expired_session_goes_to_sign_in_with_a_message(world: World) -> None:
    client, _ = console(world.inst, "agent")
    with world.inst.db.write() as conn:
        conn.execute("UPDATE sessions SET last_seen_at = '2000-01-01T00:00:00.000000Z'")
    response = secured(client.get("/console/inbox", follow_redirects=False))
    assert response.headers["location"] == "/console/login?next=%2Fconsole%2Finbox&expired=1"
    assert "Your session expired after 30 minutes without activity" in client.get(response.headers["location"]).text
    client, _ = console(world.inst, "agent")
    with world.inst.db.write() as conn:
        conn.execute("UPDATE sessions SET last_seen_at = '2000-01-01T00:00:00.000000Z'")
    fragment = client.get("/console/inbox", headers={"HX-Request": "true", "HX-Target": "conversation-list"})
    assert fragment.status_code == 401 and fragment.headers["hx-redirect"].startswith("/console/login?next=")


def test_sign_out_and_sign_out_everywhere(world: World) -> None:
    here, token = console(world.inst, "agent")
    there, _ = console(world.inst, "agent")
    elsewhere, other_token = console(world.inst, "agent")
    out = here.post("/console/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/console/login?signed_out=1"
    assert here.get("/console/inbox", follow_redirects=False).status_code == 303
    assert there.get("/console/inbox").status_code == 200  # only this session ended
    everywhere = elsewhere.post("/console/logout", data={"csrf_token": other_token, "everywhere": "true"},
                                follow_redirects=False)  # fmt: skip
    assert everywhere.status_code == 303
    assert there.get("/console/inbox", follow_redirects=False).status_code == 303
    with world.inst.db.read() as conn:
        assert conn.execute("SELECT count(*) FROM sessions").fetchone()[0] == 0
        ended = [r[0] for r in conn.execute("SELECT details FROM audit_events WHERE action = 'auth.logout'")]
    assert len(ended) == 2


def test_assets_are_served_by_content_hash_and_pages_link_them(world: World) -> None:
    assert (assets.DIST / "manifest.json").is_file(), assets.BUILD_HINT
    client, _ = console(world.inst, "agent")
    page = client.get("/console/inbox").text
    links = re.findall(r'(?:href|src)="(/console/static/[0-9a-f]{16}/[a-z.]+)" integrity="(sha384-[^"]+)"', page)
    assert {link.rsplit("/", 1)[1] for link, _ in links} == {"console.css", "htmx.min.js", "console.js"}
    for link, _ in links:
        asset = secured(client.get(link))
        assert asset.status_code == 200 and asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    css = next(link for link, _ in links if link.endswith(".css"))
    assert client.get(css.replace(css.split("/")[3], "0" * 16)).status_code == 404
    assert "http" not in re.sub(r'href="http://testserver[^"]*"', "", page.split("<body")[0])  # nothing from outside
    config = re.search(r'<meta name="htmx-config" content=\'([^\']+)\'>', page)
    assert config is not None and '"allowEval": false' in config.group(1) and '"historyCacheSize": 0' in config.group(1)
    assert 'style="' not in page and "<script>" not in page  # the CSP allows neither


def test_the_inbox_list_is_a_fragment_for_htmx_and_filters_apply(world: World) -> None:
    client, _ = console(world.inst, "agent")
    fragment = secured(client.get("/console/inbox", params={"queue": "waiting"},
                                  headers={"HX-Request": "true", "HX-Target": "conversation-list"}))  # fmt: skip
    assert fragment.text.lstrip().startswith('<section id="conversation-list"') and "<html" not in fragment.text
    assert f'data-conversation-id="{world.waiting}"' in fragment.text
    assert 'hx-swap-oob="true"' in fragment.text  # the form's queue field follows the chosen queue
    resolved_only = client.get("/console/inbox", params={"status": "resolved"}).text
    assert f'data-conversation-id="{world.waiting}"' not in resolved_only
    assert client.get("/console/inbox", params={"status": "nonsense"}).status_code == 422


def unread(client: TestClient, conversation_id: int) -> int:
    """The unread count the inbox shows on the conversation's row (0 when it shows none)."""
    rows = client.get("/console/inbox").text.split('<li class="conversation-row')[1:]
    row = next(r for r in rows if f'data-conversation-id="{conversation_id}"' in r.split(">", 1)[0])
    found = re.search(r'data-unread="(\d+)"', row)
    return int(found.group(1)) if found else 0


def test_unread_counts_follow_what_each_person_has_opened(world: World) -> None:
    agent, _ = console(world.inst, "agent")
    assert unread(agent, world.waiting) == 2  # the customer's message and the assistant's reply
    assert agent.get(f"/console/conversations/{world.waiting}").status_code == 200
    assert unread(agent, world.waiting) == 0
    flow = Flow(world.inst.db, None, responder="echo")
    flow.receive(cli_context(world.seed.north), world.seed.north, "Anyone there?", sender="visitor:v1",
                 visitor_id="v1", conversation_id=world.waiting)  # fmt: skip
    assert unread(agent, world.waiting) == 1
    manager, _ = console(world.inst, "support_manager")
    assert unread(manager, world.waiting) == 3  # bookmarks are per person


def test_internal_notes_are_audited_and_never_reach_the_customer(world: World) -> None:
    agent, token = console(world.inst, "agent")
    added = agent.post(f"/console/conversations/{world.waiting}/notes", follow_redirects=False,
                       data={"csrf_token": token, "body": "Refund approved by billing"})  # fmt: skip
    assert added.status_code == 303
    assert "Refund approved by billing" in agent.get(f"/console/conversations/{world.waiting}").text
    customer = views.visitor_view(world.inst.db, world.seed.north, world.waiting, "v1")
    assert "Refund approved" not in str(customer)
    with world.inst.db.read() as conn:
        event = conn.execute("SELECT details FROM audit_events WHERE action = 'conversation.note_added'").fetchone()
    assert event is not None and "Refund" not in event[0]  # ids only, never the text
    other_org, _ = console(world.inst)
    login(other_org, Seed.email("agent", "south"))
    assert other_org.get(f"/console/conversations/{world.waiting}").status_code == 404


def test_take_over_reply_and_resolve_go_through_the_flow(world: World) -> None:
    agent, token = console(world.inst, "agent")
    path = f"/console/conversations/{world.waiting}"
    assert agent.post(f"{path}/takeover", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    page = agent.get(path).text
    assert "Send reply" in page and "Hand back to the assistant" in page and "Take over" not in page
    for _ in range(2):  # a resubmitted form (same client id) is stored once
        agent.post(f"{path}/reply", data={"csrf_token": token, "text": "Hello from Agent", "client_id": "form-1"})
    assert agent.post(f"{path}/resolve", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    with world.inst.db.read() as conn:
        replies = conn.execute("SELECT count(*) FROM messages WHERE conversation_id = ? AND role = 'agent'",
                               (world.waiting,)).fetchone()[0]  # fmt: skip
        status = conn.execute("SELECT status FROM conversations WHERE id = ?", (world.waiting,)).fetchone()[0]
        actions = {r[0] for r in conn.execute("SELECT action FROM audit_events")}
    assert replies == 1 and status == "resolved"
    assert {"conversation.assigned", "conversation.agent_replied", "conversation.resolved"} <= actions
    again = agent.post(f"{path}/takeover", data={"csrf_token": token})
    assert again.status_code == 409 and "resolved" in again.text  # a domain refusal is a page with its reason


def test_a_drafted_answer_becomes_a_reply_without_its_citation_marks() -> None:
    from appliance.console.render import uncited

    draft = "1. Select **Forgot password?** [1]\n2. Choose a new one [2].\n\nThe link works once [12]."
    assert uncited(draft) == "1. Select **Forgot password?**\n2. Choose a new one.\n\nThe link works once."
    assert uncited(None) == ""
