"""Customers and agents meeting over real WebSocket sessions against a running server: a rule escalates, the team
is alerted (also an agent who comes online later), one agent takes over (a second gets 409), replies reach the
widget, a resend is not stored twice, a reconnect gets exactly what it missed, resolve, CSAT."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from appliance.auth import users
from appliance.conversations.widget import identity_signature
from appliance.instance import Instance, cli_context
from appliance.web.app import create_app
from tests.conftest import PASSWORD, Seed
from tests.conversations.live import frames_until, send, serve, ws
from tests.conversations.live import widget as widget_ws


@pytest.fixture
def live(inst: Instance, seed: Seed) -> Iterator[str]:
    users.add_user(inst.db, inst.passwords, cli_context(seed.north), seed.north, "agent-two@north.example", PASSWORD,
                   "agent", "Second Agent")  # fmt: skip
    with serve(create_app(inst)) as address:
        yield address


def staff(address: str, email: str) -> httpx.Client:
    client = httpx.Client(base_url=f"http://{address}", timeout=30)
    got = client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert got.status_code == 200, got.text
    client.headers["X-CSRF-Token"] = got.json()["csrf_token"]
    return client


def cookie(client: httpx.Client) -> dict[str, str]:
    return {"Cookie": f"appliance_session={client.cookies['appliance_session']}"}


def user_id(admin: httpx.Client, email: str) -> int:
    return next(u["id"] for u in admin.get("/api/users").json() if u["email"] == email)


def visitor_session(address: str, key: str, secret: str, external_id: str = "emp-42") -> dict[str, Any]:
    now = int(time.time())
    identity = {"user_id": external_id, "email": "pat@north.example", "name": "Pat", "timestamp": now,
                "signature": identity_signature(secret, external_id, "pat@north.example", now)}  # fmt: skip
    got = httpx.post(f"http://{address}/api/widget/session", json={"key": key, "identity": identity})
    assert got.status_code == 200, got.text
    return dict(got.json())


def test_escalation_alert_takeover_reply_resume_resolve_and_csat(live: str, inst: Instance, seed: Seed) -> None:
    admin, manager = staff(live, Seed.email("admin")), staff(live, Seed.email("support_manager"))
    agent, agent_two = staff(live, Seed.email("agent")), staff(live, "agent-two@north.example")
    agent_id, agent_two_id = user_id(admin, Seed.email("agent")), user_id(admin, "agent-two@north.example")
    created = admin.post("/api/widget/keys", json={"theme": {"primary_color": "#0055aa", "greeting": "Hello"}})
    assert created.status_code == 201
    key, secret = created.json()["public_key"], created.json()["identity_secret"]
    team = manager.post("/api/teams", json={"name": "Billing", "members": [agent_id, agent_two_id]}).json()
    rule = manager.post("/api/escalation-rules", json={
        "name": "Refunds go to billing", "trigger_type": "keyword", "trigger_value": r"\brefund",
        "action": "route_to_team", "target_team_id": team["id"]})  # fmt: skip
    assert rule.status_code == 201, rule.text

    session = visitor_session(live, key, secret)
    assert session["customer_id"] is not None and session["theme"]["greeting"] == "Hello"
    widget = widget_ws(live, session["session"])
    send(widget, {"type": "message", "client_id": "c-1", "text": "I want a refund for my last invoice"})
    got = frames_until(widget, lambda f: f["type"] == "status" and f["status"] == "escalated")
    ack = next(f for f in got if f["type"] == "ack")
    assert ack["client_id"] == "c-1" and not ack["duplicate"]
    conversation_id, first_id = ack["conversation_id"], ack["message_id"]
    assert [f for f in got if f["type"] == "message"][0]["message"]["content"].startswith("I want a refund")
    assert not any(f["type"] == "delta" for f in got)  # escalated before any answer: the assistant stays silent

    # Nobody is online: the conversation waits in the Billing queue; the agent's console shows it on connect.
    queue = manager.get("/api/conversations", params={"status": "escalated"}).json()
    assert [(c["id"], c["team_id"], c["assigned_agent_id"]) for c in queue] == [(conversation_id, team["id"], None)]
    console = ws(live, "/ws/console", cookie(agent))
    first = frames_until(console, lambda f: f["type"] == "queue")[-1]
    assert [c["id"] for c in first["conversations"]] == [conversation_id]
    # The second agent comes online first: the queued conversation is assigned to them, over the hub.
    console_two = ws(live, "/ws/console", cookie(agent_two))
    frames_until(console_two, lambda f: f["type"] == "queue")
    assert agent_two.put("/api/agents/me", json={"availability": "online"}).json()["load"] == 1
    assigned = frames_until(console_two, lambda f: f["type"] == "assigned")[-1]
    assert assigned["conversation_id"] == conversation_id and assigned["how"] == "routed"

    # The first agent may not see it now that it is the second agent's; a manager reassigns it to the first.
    assert agent.post(f"/api/conversations/{conversation_id}/takeover").status_code == 404
    assert manager.post(f"/api/conversations/{conversation_id}/assign", json={"agent_id": agent_id}).status_code == 200
    taken = agent.post(f"/api/conversations/{conversation_id}/takeover")
    assert taken.status_code == 200 and taken.json()["handled_by"] == "agent"
    again = agent_two.post(f"/api/conversations/{conversation_id}/takeover")
    assert again.status_code in (404, 409)  # no longer theirs to see, and in any case taken
    joined = frames_until(widget, lambda f: f["type"] == "agent_joined")
    assert joined[-1]["agent"] == "agent of north"

    package = agent.get(f"/api/conversations/{conversation_id}").json()
    assert package["handoff"]["customer"]["external_id"] == "emp-42"
    assert package["handoff"]["decisions"][0]["rule_id"] == rule.json()["id"]
    assert "refund" in package["handoff"]["summary"]

    sent = agent.post(f"/api/conversations/{conversation_id}/messages", json={"text": "I can help with that.",
                                                                              "client_id": "a-1"})  # fmt: skip
    assert sent.status_code == 201
    reply = frames_until(widget, lambda f: f["type"] == "message" and f["message"]["role"] == "agent")[-1]
    assert reply["message"]["content"] == "I can help with that." and reply["message"]["agent"] == "agent of north"

    # The widget resends its first message (its ack was "lost"): same id, nothing stored twice.
    send(widget, {"type": "message", "client_id": "c-1", "text": "I want a refund for my last invoice",
                  "conversation_id": conversation_id})  # fmt: skip
    dup = frames_until(widget, lambda f: f["type"] == "ack")[-1]
    assert dup["duplicate"] and dup["message_id"] == first_id
    # The widget drops; the agent writes meanwhile; a reconnect with the last seen id gets exactly what it missed.
    widget.close()
    missed = agent.post(f"/api/conversations/{conversation_id}/messages", json={"text": "Refund issued."}).json()
    widget = widget_ws(live, session["session"])
    send(widget, {"type": "resume", "conversation_id": conversation_id, "after": reply["message"]["id"]})
    history = frames_until(widget, lambda f: f["type"] == "history")[-1]
    assert [m["id"] for m in history["messages"]] == [missed["message_id"]]
    assert history["agent"] == "agent of north" and history["handled_by"] == "agent"
    with inst.db.read() as conn:
        rows = conn.execute("SELECT role, count(*) FROM messages WHERE conversation_id = ? GROUP BY role",
                            (conversation_id,)).fetchall()  # fmt: skip
    assert {r[0]: r[1] for r in rows} == {"customer": 1, "agent": 2, "ai": 1}  # "ai": the notice of who is coming

    resolved = agent.post(f"/api/conversations/{conversation_id}/resolve")
    assert resolved.json()["status"] == "resolved" and resolved.json()["resolution_type"] == "agent_resolved"
    frames_until(widget, lambda f: f["type"] == "status" and f["status"] == "resolved")
    visitor = {"X-Visitor-Session": session["session"]}
    rated = httpx.post(f"http://{live}/api/conversations/{conversation_id}/csat", headers=visitor,
                       json={"rating": 4, "comment": "quick"})  # fmt: skip
    assert rated.status_code == 200
    assert httpx.post(f"http://{live}/api/conversations/{conversation_id}/csat", headers=visitor,
                      json={"rating": 5}).status_code == 409  # fmt: skip
    send(widget, {"type": "message", "client_id": "c-2", "text": "one more thing", "conversation_id": conversation_id})
    error = frames_until(widget, lambda f: f["type"] == "error")[-1]
    assert error["status"] == 409 and error["client_id"] == "c-2"
    history = agent.get(f"/api/customers/{session['customer_id']}/history").json()
    assert history["customer"]["total_conversations"] == 1 and history["conversations"][0]["csat"] == 4

    audit = {e["action"]: e for e in staff(live, Seed.email("compliance_officer")).get(
        "/api/audit/events", params={"limit": 500}).json()}  # fmt: skip
    fired = audit["conversation.rule_fired"]["details"]
    assert fired["rule_id"] == rule.json()["id"] and fired["action"] == "route_to_team"
    assert fired["inputs"]  # the values the rule compared
    assert {"conversation.assigned", "conversation.resolved", "conversation.csat", "conversation.agent_replied",
            "conversation.escalated"} <= set(audit)  # fmt: skip
    for conn in (widget, console, console_two):
        conn.close()


def test_two_agents_taking_over_at_once_one_wins(live: str, inst: Instance, seed: Seed) -> None:
    admin = staff(live, Seed.email("admin"))
    key = admin.post("/api/widget/keys", json={}).json()
    session = httpx.post(f"http://{live}/api/widget/session", json={"key": key["public_key"]}).json()
    visitor = {"X-Visitor-Session": session["session"]}
    first = httpx.post(f"http://{live}/api/chat/message", headers=visitor, timeout=30,
                       json={"message": "please let me talk to a human", "client_id": "x1"}).json()  # fmt: skip
    assert first["status"] == "escalated" and first["answer"] is None  # a request for a person is never answered
    conversation_id = first["conversation_id"]
    agents = [staff(live, Seed.email("agent")), staff(live, "agent-two@north.example")]
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        codes = sorted(pool.map(lambda c: c.post(f"/api/conversations/{conversation_id}/takeover").status_code, agents))
    assert codes == [200, 409]


def test_forged_sessions_and_identities_are_refused_and_audited(live: str, inst: Instance, seed: Seed) -> None:
    admin = staff(live, Seed.email("admin"))
    key = admin.post("/api/widget/keys", json={}).json()
    now = int(time.time())
    forged = {"user_id": "emp-1", "email": "x@north.example", "timestamp": now,
              "signature": hmac.new(b"guess", f"emp-1\nx@north.example\n{now}".encode(), hashlib.sha256).hexdigest()}
    got = httpx.post(f"http://{live}/api/widget/session", json={"key": key["public_key"], "identity": forged})
    assert got.status_code == 401
    old = {**forged, "timestamp": now - 3 * 86400,
           "signature": identity_signature(key["identity_secret"], "emp-1", "x@north.example", now - 3 * 86400)}
    assert httpx.post(f"http://{live}/api/widget/session", json={"key": key["public_key"], "identity": old}).status_code == 401
    session = httpx.post(f"http://{live}/api/widget/session", json={"key": key["public_key"]}).json()["session"]
    payload, mac = session.split(".")
    tampered = {"X-Visitor-Session": payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + mac}
    assert httpx.post(f"http://{live}/api/chat/message", headers=tampered, json={"message": "hi"}).status_code == 401
    bad_ws = ws(live, "/ws/widget")
    send(bad_ws, {"type": "hello", "session": f"{uuid.uuid4().hex}.x"})
    refused = frames_until(bad_ws, lambda f: f["type"] == "error")[-1]
    assert refused["status"] == 401
    bad_ws.close()
    no_hello = ws(live, "/ws/widget")
    send(no_hello, {"type": "message", "client_id": "m", "text": "hi"})  # anything but a hello first is refused
    assert frames_until(no_hello, lambda f: f["type"] == "error")[-1]["status"] == 401
    no_hello.close()
    # A key revoked while its widget is connected: the next message is refused and the socket closed.
    open_socket = widget_ws(live, session)
    assert admin.delete(f"/api/widget/keys/{key['id']}").status_code == 204
    send(open_socket, {"type": "message", "client_id": "after-revoke", "text": "still there?"})
    assert frames_until(open_socket, lambda f: f["type"] == "error")[-1]["status"] == 401
    with pytest.raises(ConnectionClosed) as closed:
        open_socket.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    with inst.db.read() as conn:
        kinds = [r[0] for r in conn.execute("SELECT json_extract(details, '$.kind') FROM audit_events"
                                            " WHERE action = 'widget.signature_rejected' ORDER BY id")]  # fmt: skip
    assert kinds == ["identity", "identity", "visitor_session", "visitor_session"]


def test_bad_messages_get_clear_errors_and_change_nothing(live: str, inst: Instance, seed: Seed) -> None:
    admin = staff(live, Seed.email("admin"))
    key = admin.post("/api/widget/keys", json={}).json()
    session = httpx.post(f"http://{live}/api/widget/session", json={"key": key["public_key"]}).json()
    visitor = {"X-Visitor-Session": session["session"]}
    big = httpx.post(f"http://{live}/api/chat/message", headers=visitor, json={"message": "é" * 2100})
    assert big.status_code == 413 and big.json()["code"] == "payload_too_large"
    unknown = httpx.post(f"http://{live}/api/chat/message", headers=visitor,
                         json={"message": "hello", "conversation_id": 424242})  # fmt: skip
    assert unknown.status_code == 404
    widget = widget_ws(live, session["session"])
    widget.send("not json")
    assert frames_until(widget, lambda f: f["type"] == "error")[-1]["code"] == "malformed_json"
    send(widget, {"type": "message", "client_id": "big", "text": "x" * 5000})
    assert frames_until(widget, lambda f: f["type"] == "error")[-1]["status"] == 413
    send(widget, {"type": "resume", "conversation_id": 424242})
    assert frames_until(widget, lambda f: f["type"] == "error")[-1]["status"] == 404
    widget.close()
    with inst.db.read() as conn:
        assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM conversations").fetchone()[0] == 0
