"""Webhooks through the API as an admin (or an integration key) manages them: CRUD, the secret shown once only,
the delivery log and redelivery, organisation isolation, and refusal for roles without manage_integrations."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from appliance.instance import Instance
from appliance.webhooks import delivery, outbox, signing
from tests.conftest import Seed, client_for
from tests.webhooks.receiver import receiving

T0 = datetime(2030, 3, 1, 8, 0, 0, tzinfo=UTC)


def test_webhook_crud_with_the_secret_shown_once_only(inst: Instance, seed: Seed) -> None:
    admin = client_for(inst, Seed.email("admin"))
    created = admin.post("/api/webhooks", json={"url": "https://crm.example/hook", "events": ["conversation.created"]})
    assert created.status_code == 201, created.text
    body = created.json()
    secret = body.pop("secret")
    assert secret.startswith("whsec_")
    assert body["url"] == "https://crm.example/hook" and body["events"] == ["conversation.created"] and body["active"]
    hook_id = body["id"]

    listed = admin.get("/api/webhooks")
    assert listed.status_code == 200 and listed.json() == [body]
    assert secret not in listed.text

    changed = admin.put(f"/api/webhooks/{hook_id}", json={"events": ["message.created", "csat.submitted"],
                                                          "active": False})  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert changed.json()["events"] == ["message.created", "csat.submitted"] and changed.json()["active"] is False
    assert changed.json()["url"] == "https://crm.example/hook" and "secret" not in changed.json()

    rotated = admin.post(f"/api/webhooks/{hook_id}/rotate-secret")
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != secret
    assert new_secret not in admin.get("/api/webhooks").text

    compliance = client_for(inst, Seed.email("compliance_officer"))
    trail = compliance.get("/api/audit/events", params={"action": "webhook.changed"}).json()
    assert [e["details"]["change"] for e in sorted(trail, key=lambda e: e["id"])] == [
        "created", "updated", "secret_rotated"]  # fmt: skip
    assert secret not in json.dumps(trail) and new_secret not in json.dumps(trail)

    assert admin.delete(f"/api/webhooks/{hook_id}").status_code == 204
    assert admin.get("/api/webhooks").json() == []
    assert admin.delete(f"/api/webhooks/{hook_id}").status_code == 404
    assert admin.put(f"/api/webhooks/{hook_id}", json={"active": True}).status_code == 404


def test_invalid_webhooks_are_refused_with_422(inst: Instance, seed: Seed) -> None:
    admin = client_for(inst, Seed.email("admin"))
    for bad in (
        {"url": "ftp://crm.example/hook", "events": ["conversation.created"]},
        {"url": "https://crm.example/hook", "events": []},
        {"url": "https://crm.example/hook", "events": ["conversation.exploded"]},
        {"url": "https://crm.example/hook", "events": ["conversation.created"], "secret": "mine"},
        {"events": ["conversation.created"]},
    ):
        response = admin.post("/api/webhooks", json=bad)
        assert response.status_code == 422, (bad, response.text)
    assert admin.get("/api/webhooks").json() == []


def test_the_delivery_log_and_redeliver(inst: Instance, seed: Seed) -> None:
    admin = client_for(inst, Seed.email("admin"))
    with receiving([500]) as receiver:
        hook = admin.post("/api/webhooks", json={"url": receiver.url, "events": ["conversation.resolved"]}).json()
        with inst.db.write() as conn:
            data = {"conversation_id": 4, "note": "customer said thanks"}
            [delivery_id] = outbox.enqueue(conn, seed.north, "conversation.resolved", data, 4, now=T0)
        delivery.deliver_due(inst.db, T0, timeout_s=5, max_attempts=1)

        log = admin.get(f"/api/webhooks/{hook['id']}/deliveries")
        assert log.status_code == 200
        [entry] = log.json()
        assert {k: entry[k] for k in ("id", "event", "status", "attempts", "last_status_code", "last_error")} == {
            "id": delivery_id, "event": "conversation.resolved", "status": "failed", "attempts": 1,
            "last_status_code": 500, "last_error": "HTTP 500"}  # fmt: skip
        assert {"created_at", "delivered_at", "next_attempt_at"} <= set(entry)
        assert "payload" not in entry and "customer said thanks" not in log.text

        # Redeliver: reset, and sent at once by the (here immediate) task queue.
        redone = admin.post(f"/api/webhooks/deliveries/{delivery_id}/redeliver")
        assert redone.status_code == 200, redone.text
        assert (redone.json()["status"], redone.json()["attempts"], redone.json()["last_status_code"]) == (
            "delivered", 1, 200)  # fmt: skip
        assert admin.post(f"/api/webhooks/deliveries/{delivery_id}/redeliver").status_code == 409
        assert admin.post("/api/webhooks/deliveries/999999/redeliver").status_code == 404
    assert len(receiver.requests) == 2
    last = receiver.requests[-1]
    assert json.loads(last.body)["data"]["note"] == "customer said thanks"
    with inst.db.read() as conn:
        secret = conn.execute("SELECT secret FROM webhooks WHERE id = ?", (hook["id"],)).fetchone()[0]
    # signed when it was sent, by the real clock
    timestamp = int(last.headers["x-appliance-signature"].split(",")[0].removeprefix("t="))
    signing.verify(secret, last.headers["x-appliance-signature"], last.body, now=timestamp)
    assert admin.get(f"/api/webhooks/{hook['id']}/deliveries", params={"limit": 0}).status_code == 422


def test_another_organisations_webhooks_look_missing(inst: Instance, seed: Seed) -> None:
    north = client_for(inst, Seed.email("admin", "north"))
    south = client_for(inst, Seed.email("admin", "south"))
    hook = south.post("/api/webhooks", json={"url": "https://south.example/hook", "events": ["csat.submitted"]}).json()
    assert north.get("/api/webhooks").json() == []
    assert north.put(f"/api/webhooks/{hook['id']}", json={"active": False}).status_code == 404
    assert north.post(f"/api/webhooks/{hook['id']}/rotate-secret").status_code == 404
    assert north.get(f"/api/webhooks/{hook['id']}/deliveries").status_code == 404
    assert north.delete(f"/api/webhooks/{hook['id']}").status_code == 404
    assert south.get("/api/webhooks").json()[0]["active"] is True


def test_roles_without_manage_integrations_are_refused(inst: Instance, seed: Seed) -> None:
    admin = client_for(inst, Seed.email("admin"))
    hook = admin.post("/api/webhooks", json={"url": "https://crm.example/hook", "events": ["csat.submitted"]}).json()
    for role in ("support_manager", "agent", "knowledge_editor", "compliance_officer"):
        client = client_for(inst, Seed.email(role))
        calls = [
            client.get("/api/webhooks"),
            client.post("/api/webhooks", json={"url": "https://evil.example/", "events": ["message.created"]}),
            client.put(f"/api/webhooks/{hook['id']}", json={"url": "https://evil.example/"}),
            client.delete(f"/api/webhooks/{hook['id']}"),
            client.post(f"/api/webhooks/{hook['id']}/rotate-secret"),
            client.get(f"/api/webhooks/{hook['id']}/deliveries"),
            client.post("/api/webhooks/deliveries/1/redeliver"),
        ]
        assert [c.status_code for c in calls] == [403] * len(calls), role
    assert [h["url"] for h in admin.get("/api/webhooks").json()] == ["https://crm.example/hook"]


def test_an_api_key_scoped_to_manage_integrations_manages_webhooks(inst: Instance, seed: Seed) -> None:
    admin = client_for(inst, Seed.email("admin"))
    key = admin.post("/api/apikeys", json={"name": "crm", "scopes": ["manage_integrations"]}).json()
    keyed = client_for(inst, Seed.email("admin"))
    keyed.cookies.clear()
    keyed.headers["Authorization"] = f"Bearer {key['token']}"
    created = keyed.post("/api/webhooks", json={"url": "https://crm.example/hook", "events": ["message.created"]})
    assert created.status_code == 201 and created.json()["created_by"] == f"apikey:{key['id']}"
