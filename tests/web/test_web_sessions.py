"""Sign-in, cookies, CSRF, expiry, sign-out, disabled users, password change and API keys, through the API."""

from __future__ import annotations

from pathlib import Path

from appliance.auth import orgs, users
from appliance.instance import Instance, cli_context, init_instance
from appliance.store import now_iso
from appliance.web.app import create_app
from appliance.web.deps import SESSION_COOKIE
from tests.conftest import PASSWORD, Seed, client_for, login, make_client, make_settings


def test_login_sets_a_locked_down_cookie_and_audits(inst: Instance, seed: Seed) -> None:
    client = make_client(create_app(inst))
    response = client.post("/api/auth/login", json={"email": Seed.email("agent"), "password": PASSWORD})
    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    assert f"{SESSION_COOKIE}=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
    assert "Secure" not in cookie  # plain HTTP here; see the TLS test below
    assert response.json()["role"] == "agent"
    assert response.json()["org"]["slug"] == "north"

    bad = client.post("/api/auth/login", json={"email": Seed.email("agent"), "password": "wrong password!!"})
    assert bad.status_code == 401 and bad.json()["code"] == "invalid_credentials"
    unknown = client.post("/api/auth/login", json={"email": "nobody@north.example", "password": "wrong password!!"})
    assert unknown.json()["message"] == bad.json()["message"]  # no hint whether the email exists

    with inst.db.read() as conn:
        actions = [r[0] for r in conn.execute("SELECT action || ':' || outcome FROM audit_events ORDER BY id")]
    assert "auth.login.succeeded:success" in actions
    assert actions.count("auth.login.failed:failure") == 2


def test_cookie_is_secure_under_tls(inst: Instance, seed: Seed) -> None:
    client = make_client(create_app(inst))
    client.base_url = client.base_url.copy_with(scheme="https")  # type: ignore[misc]
    response = client.post("https://testserver/api/auth/login", json={"email": Seed.email("agent"), "password": PASSWORD})
    assert "Secure" in response.headers["set-cookie"]


def test_csrf_is_required_for_cookie_changes(inst: Instance, seed: Seed) -> None:
    client = make_client(create_app(inst))
    token = login(client, Seed.email("admin"))
    body = {"timezone": "Europe/Berlin"}
    missing = client.put("/api/settings", json=body)
    assert missing.status_code == 403 and missing.json()["code"] == "csrf_failed"
    wrong = client.put("/api/settings", json=body, headers={"X-CSRF-Token": "not-the-token"})
    assert wrong.status_code == 403
    assert client.get("/api/settings").json()["settings"] == {}
    ok = client.put("/api/settings", json=body, headers={"X-CSRF-Token": token})
    assert ok.status_code == 200 and ok.json()["settings"]["timezone"] == "Europe/Berlin"
    # Form posts may carry the token as a field instead.
    form = client.post("/api/auth/logout", data={"csrf_token": token})
    assert form.status_code in (200, 422)  # reached the route: the CSRF check passed
    assert form.json().get("code") != "csrf_failed"


def test_idle_session_expires(inst: Instance, seed: Seed) -> None:
    client = client_for(inst, Seed.email("agent"))
    assert client.get("/api/auth/me").status_code == 200
    with inst.db.write() as conn:
        conn.execute("UPDATE sessions SET last_seen_at = '2000-01-01T00:00:00.000000Z'")
    expired = client.get("/api/auth/me")
    assert expired.status_code == 401 and expired.json()["code"] == "session_expired"
    with inst.db.read() as conn:
        assert conn.execute("SELECT count(*) FROM sessions").fetchone()[0] == 0


def test_absolute_session_age_expires(inst: Instance, seed: Seed) -> None:
    client = client_for(inst, Seed.email("agent"))
    with inst.db.write() as conn:
        conn.execute("UPDATE sessions SET expires_at = ?", (now_iso(),))
    assert client.get("/api/auth/me").json()["code"] == "session_expired"


def test_logout_and_logout_everywhere(inst: Instance, seed: Seed) -> None:
    first = client_for(inst, Seed.email("agent"))
    second = client_for(inst, Seed.email("agent"))
    third = client_for(inst, Seed.email("agent"))
    assert first.post("/api/auth/logout", json={}).json() == {"sessions_ended": 1}
    assert first.get("/api/auth/me").status_code == 401
    assert second.get("/api/auth/me").status_code == 200
    assert second.post("/api/auth/logout", json={"everywhere": True}).json() == {"sessions_ended": 2}
    assert third.get("/api/auth/me").status_code == 401


def test_disabling_a_user_ends_their_sessions(inst: Instance, seed: Seed) -> None:
    agent = client_for(inst, Seed.email("agent"))
    admin = client_for(inst, Seed.email("admin"))
    agent_id = agent.get("/api/auth/me").json()["id"]
    assert admin.post(f"/api/users/{agent_id}/disable").json()["disabled"] is True
    assert agent.get("/api/auth/me").status_code == 401
    retry = make_client(create_app(inst)).post("/api/auth/login", json={"email": Seed.email("agent"), "password": PASSWORD})
    assert retry.status_code == 401


def test_last_admin_cannot_be_demoted_or_disabled(inst: Instance, seed: Seed) -> None:
    admin = client_for(inst, Seed.email("admin"))
    me = admin.get("/api/auth/me").json()["id"]
    assert admin.put(f"/api/users/{me}/role", json={"role": "agent"}).status_code == 409
    assert admin.post(f"/api/users/{me}/disable").status_code == 409
    assert admin.get(f"/api/users/{me}").json()["role"] == "admin"


def test_password_change_needs_the_current_one_and_ends_other_sessions(inst: Instance, seed: Seed) -> None:
    here = client_for(inst, Seed.email("agent"))
    elsewhere = client_for(inst, Seed.email("agent"))
    new = "an entirely new passphrase"
    wrong = here.post("/api/auth/password", json={"current_password": "not it at all!", "new_password": new})
    assert wrong.status_code == 401
    weak = here.post("/api/auth/password", json={"current_password": PASSWORD, "new_password": "short"})
    assert weak.status_code == 422
    ok = here.post("/api/auth/password", json={"current_password": PASSWORD, "new_password": new})
    assert ok.status_code == 200
    assert here.get("/api/auth/me").status_code == 200
    assert elsewhere.get("/api/auth/me").status_code == 401
    fresh = make_client(create_app(inst))
    assert fresh.post("/api/auth/login", json={"email": Seed.email("agent"), "password": new}).status_code == 200


def test_api_keys_are_scoped_shown_once_and_revocable(inst: Instance, seed: Seed) -> None:
    admin = client_for(inst, Seed.email("admin"))
    created = admin.post("/api/apikeys", json={"name": "crm", "scopes": ["manage_team"]})
    assert created.status_code == 201
    token = created.json()["token"]
    assert token.startswith("apl_")
    listed = admin.get("/api/apikeys").json()
    assert "token" not in listed[0] and token not in str(listed)
    with inst.db.read() as conn:
        stored = conn.execute("SELECT secret_hash FROM api_keys").fetchone()[0]
    assert token.split("_", 2)[2] not in stored

    keyed = make_client(create_app(inst))
    keyed.headers["Authorization"] = f"Bearer {token}"
    assert keyed.get("/api/users").status_code == 200
    assert keyed.get("/api/settings").status_code == 403  # outside its scope
    # Bearer requests carry no cookie, so they need no CSRF token.
    made = keyed.post("/api/users", json={"email": "via.key@north.example", "password": PASSWORD, "role": "agent"})
    assert made.status_code == 201
    assert admin.get("/api/apikeys").json()[0]["last_used_at"] is not None

    # A key cannot be given more than its creator holds.
    too_much = admin.post("/api/apikeys", json={"name": "x", "scopes": ["view_audit"]})
    assert too_much.status_code == 403

    assert admin.delete(f"/api/apikeys/{created.json()['id']}").json()["revoked_at"] is not None
    assert keyed.get("/api/users").status_code == 401
    forged = make_client(create_app(inst))
    forged.headers["Authorization"] = "Bearer " + token[:-3] + "abc"
    assert forged.get("/api/users").status_code == 401


def test_user_of_several_orgs_chooses_one(tmp_path: Path) -> None:
    inst = init_instance(make_settings(tmp_path), cli_context())
    a = orgs.create_org(inst.db, cli_context(), "clinic-a", "Clinic A")
    b = orgs.create_org(inst.db, cli_context(), "clinic-b", "Clinic B")
    users.add_user(inst.db, inst.passwords, cli_context(a.id), a.id, "doc@group.example", PASSWORD, "admin")
    users.add_membership(inst.db, cli_context(b.id), b.id, "doc@group.example", "agent")
    client = make_client(create_app(inst))
    ambiguous = client.post("/api/auth/login", json={"email": "doc@group.example", "password": PASSWORD})
    assert ambiguous.status_code == 401
    in_b = client.post("/api/auth/login", json={"email": "doc@group.example", "password": PASSWORD, "org": "clinic-b"})
    assert in_b.json()["role"] == "agent" and in_b.json()["org"]["slug"] == "clinic-b"
    inst.close()
