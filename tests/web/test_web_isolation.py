"""Two organisations on one box: no endpoint returns or changes the other organisation's rows."""

from __future__ import annotations

import io
import json
import zipfile

from appliance.instance import Instance
from tests.conftest import Seed, client_for


def test_no_endpoint_crosses_organisations(inst: Instance, seed: Seed) -> None:
    north = client_for(inst, Seed.email("admin", "north"))
    south = client_for(inst, Seed.email("admin", "south"))
    north_users = north.get("/api/users").json()
    south_users = south.get("/api/users").json()
    assert {u["email"].split("@")[1] for u in north_users} == {"north.example"}
    assert {u["email"].split("@")[1] for u in south_users} == {"south.example"}

    south_agent = next(u for u in south_users if u["role"] == "agent")
    # Reading, re-roling or disabling a user of the other organisation looks exactly like a missing user.
    assert north.get(f"/api/users/{south_agent['id']}").status_code == 404
    assert north.put(f"/api/users/{south_agent['id']}/role", json={"role": "admin"}).status_code == 404
    assert north.post(f"/api/users/{south_agent['id']}/disable").status_code == 404
    assert south.get(f"/api/users/{south_agent['id']}").json()["role"] == "agent"
    assert south.get(f"/api/users/{south_agent['id']}").json()["disabled"] is False

    key = south.post("/api/apikeys", json={"name": "south-crm", "scopes": ["manage_integrations"]}).json()
    assert north.get("/api/apikeys").json() == []
    assert north.delete(f"/api/apikeys/{key['id']}").status_code == 404
    assert south.get("/api/apikeys").json()[0]["revoked_at"] is None

    north.put("/api/settings", json={"name": "North Renamed"})
    assert south.get("/api/settings").json()["name"] == "South Bank"

    # An API key acts only inside its own organisation.
    keyed = client_for(inst, Seed.email("admin", "north"))
    keyed.cookies.clear()
    keyed.headers["Authorization"] = f"Bearer {key['token']}"
    assert {k["name"] for k in keyed.get("/api/apikeys").json()} == {"south-crm"}


def test_audit_trail_is_per_organisation(inst: Instance, seed: Seed) -> None:
    north_admin = client_for(inst, Seed.email("admin", "north"))
    north_admin.put("/api/settings", json={"timezone": "Europe/Oslo"})
    south_admin = client_for(inst, Seed.email("admin", "south"))
    south_admin.put("/api/settings", json={"timezone": "Europe/Lisbon"})

    north = client_for(inst, Seed.email("compliance_officer", "north"))
    events = north.get("/api/audit/events", params={"limit": 1000}).json()
    assert events and all(e["org_id"] == seed.north for e in events)
    assert "Europe/Lisbon" not in json.dumps(events)
    assert north.get("/api/audit/verify").json()["ok"] is True

    exported = north.post("/api/audit/export", json={})
    assert exported.status_code == 200
    with zipfile.ZipFile(io.BytesIO(exported.content)) as zf:
        lines = zf.read("events.jsonl").decode().splitlines()
    assert lines and all(json.loads(line)["chain"] == seed.north for line in lines)
    assert "Europe/Lisbon" not in "\n".join(lines)
