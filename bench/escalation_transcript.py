"""A recorded escalation, end to end, against a real server: a keyword rule fires on a customer's widget message,
the team's online agent is alerted over the hub, takes over, replies, and resolves; the customer rates it. Prints
what each side saw (frames and API replies) and the audit events, in order.

    .venv/bin/python bench/escalation_transcript.py [--with-models]

--with-models installs the shipped embedder and sentiment model into the throwaway data dir first (the ONNX
export takes a minute), so the customer's message carries its sentiment.
"""

from __future__ import annotations

import json
import socket
import warnings
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from websockets.sync.client import ClientConnection, connect

from appliance.auth import orgs, users
from appliance.config import Settings
from appliance.conversations.widget import identity_signature
from appliance.inference import registry
from appliance.instance import cli_context, init_instance
from appliance.web.app import create_app

PASSWORD = "a long demo password"
START = time.monotonic()


def say(who: str, what: str) -> None:
    print(f"{time.monotonic() - START:7.3f}s  {who:<9} {what}")


def frames(conn: ClientConnection, who: str, until: str, timeout: float = 20) -> list[dict[str, Any]]:
    got = []
    while True:
        frame = json.loads(conn.recv(timeout=timeout))
        got.append(frame)
        shown = {k: v for k, v in frame.items() if k not in ("conversations",)}
        if "message" in frame and isinstance(frame["message"], dict):
            m = frame["message"]
            shown["message"] = {k: m[k] for k in ("id", "role", "content", "agent") if m.get(k) is not None}
        say(who, f"<- {json.dumps(shown, ensure_ascii=False)}")
        if frame["type"] == until:
            return got


def main() -> None:
    warnings.simplefilter("ignore", DeprecationWarning)
    with tempfile.TemporaryDirectory(prefix="appliance-transcript-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data")  # type: ignore[call-arg]
        inst = init_instance(settings, cli_context())
        if "--with-models" in sys.argv:
            manifest = registry.load_manifest(settings.models_manifest)
            for spec in manifest:
                if spec.role in ("embedder", "sentiment"):
                    registry.install(inst.db, cli_context(), settings.resolved_models_dir, spec,
                                     settings.models_manifest.parent)  # fmt: skip
                    say("setup", f"installed {spec.name}")
        org = orgs.create_org(inst.db, cli_context(), "clinic", "City Clinic")
        for email, role, name in (("admin@clinic.example", "admin", "Ada Admin"),
                                  ("manager@clinic.example", "support_manager", "Max Manager"),
                                  ("sam@clinic.example", "agent", "Sam Agent")):  # fmt: skip
            users.add_user(inst.db, inst.passwords, cli_context(org.id), org.id, email, PASSWORD, role, name)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
        server = uvicorn.Server(uvicorn.Config(create_app(inst), log_level="warning", ws="websockets-sansio"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        try:
            run(address)
        finally:
            server.should_exit = True
            thread.join(timeout=30)
        with inst.db.read() as conn:
            print("\naudit trail (conversation events):")
            for row in conn.execute("SELECT id, actor, action, target, details FROM audit_events WHERE action LIKE"
                                    " 'conversation.%' OR action LIKE 'answer.%' ORDER BY id"):  # fmt: skip
                print(f"  #{row['id']} {row['action']:<26} {row['target']:<16} by {row['actor']:<16} {row['details']}")
        inst.close()


def staff(address: str, email: str) -> httpx.Client:
    client = httpx.Client(base_url=f"http://{address}", timeout=30)
    client.headers["X-CSRF-Token"] = client.post("/api/auth/login",
                                                 json={"email": email, "password": PASSWORD}).json()["csrf_token"]
    return client


def run(address: str) -> None:
    admin, manager, agent = (staff(address, f"{who}@clinic.example") for who in ("admin", "manager", "sam"))
    sam = next(u["id"] for u in admin.get("/api/users").json() if u["email"] == "sam@clinic.example")
    key = admin.post("/api/widget/keys", json={}).json()
    team = manager.post("/api/teams", json={"name": "Billing", "members": [sam]}).json()
    rule = manager.post("/api/escalation-rules", json={
        "name": "Billing disputes", "trigger_type": "keyword", "trigger_value": r"\b(refund|charged twice)\b",
        "action": "route_to_team", "target_team_id": team["id"]}).json()  # fmt: skip
    say("manager", f"rule #{rule['id']} {rule['name']!r}: keyword {rule['trigger_value']} -> team {team['name']}")
    console = connect(f"ws://{address}/ws/console",
                      additional_headers={"Cookie": f"appliance_session={agent.cookies['appliance_session']}"})  # fmt: skip
    frames(console, "agent", "queue")
    say("agent", f"-> PUT /api/agents/me online: {agent.put('/api/agents/me', json={'availability': 'online'}).json()['availability']}")

    now = int(time.time())
    identity = {"user_id": "emp-1042", "email": "jo@clinic.example", "name": "Jo", "timestamp": now,
                "signature": identity_signature(key["identity_secret"], "emp-1042", "jo@clinic.example", now)}  # fmt: skip
    session = httpx.post(f"http://{address}/api/widget/session", json={"key": key["public_key"], "identity": identity}).json()
    say("customer", f"visitor session for customer #{session['customer_id']} (signed identity emp-1042)")
    widget = connect(f"ws://{address}/ws/widget")
    widget.send(json.dumps({"type": "hello", "session": session["session"]}))
    frames(widget, "customer", "ready")
    text = "I was charged twice for my last visit and I want a refund"
    widget.send(json.dumps({"type": "message", "client_id": "m-1", "text": text}))
    say("customer", f"-> message m-1: {text!r}")
    got = frames(widget, "customer", "status")
    conversation_id = next(f for f in got if f["type"] == "ack")["conversation_id"]
    frames(console, "agent", "queue_alert")
    taken = agent.post(f"/api/conversations/{conversation_id}/takeover").json()
    say("agent", f"-> takeover: handled_by={taken['handled_by']} status={taken['status']}")
    frames(widget, "customer", "status")
    package = agent.get(f"/api/conversations/{conversation_id}").json()["handoff"]
    say("agent", f"handoff: summary={package['summary']!r}")
    for d in package["decisions"]:
        say("agent", f"handoff: decision {d['trigger_type']}/{d['action']} team={d['team_id']}: {d['reason']}")
    reply = "Sorry about that, Jo. I have refunded the duplicate charge; it shows in 3-5 days."
    agent.post(f"/api/conversations/{conversation_id}/messages", json={"text": reply})
    say("agent", f"-> reply {reply!r}")
    frames(widget, "customer", "message")
    resolved = agent.post(f"/api/conversations/{conversation_id}/resolve").json()
    say("agent", f"-> resolve: {resolved['status']} ({resolved['resolution_type']})")
    frames(widget, "customer", "status")
    rated = httpx.post(f"http://{address}/api/conversations/{conversation_id}/csat",
                       headers={"X-Visitor-Session": session["session"]}, json={"rating": 5, "comment": "Quick, thanks"})
    say("customer", f"-> CSAT 5: HTTP {rated.status_code}")
    widget.close()
    console.close()


if __name__ == "__main__":
    sys.exit(main())
