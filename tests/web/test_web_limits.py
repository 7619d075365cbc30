"""Rate limit per organisation (console pages: per person), request-size limit, and the shape of errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from appliance.auth import orgs, users
from appliance.instance import Instance, cli_context, init_instance
from appliance.web import ratelimit
from appliance.web.app import create_app
from tests.conftest import make_client, PASSWORD, Seed, login, make_settings


def _two_org_instance(tmp_path: Path, **settings: object) -> Instance:
    inst = init_instance(make_settings(tmp_path, **settings), cli_context())
    for slug in ("north", "south"):
        org = orgs.create_org(inst.db, cli_context(), slug, slug.title())
        users.add_user(inst.db, inst.passwords, cli_context(org.id), org.id, f"admin@{slug}.example", PASSWORD, "admin")
    return inst


def test_rate_limit_is_per_organisation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The clock stands still, so no token refills however slowly this machine serves the 100 requests.
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: 1000.0)
    inst = _two_org_instance(tmp_path, rate_limit_per_minute=100)
    app = create_app(inst)
    north, south = make_client(app), make_client(app)
    login(north, "admin@north.example")
    login(south, "admin@south.example")
    statuses = [north.get("/api/settings").status_code for _ in range(100)]
    assert statuses == [200] * 100
    refused = north.get("/api/settings")
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert refused.json()["retryable"] is True
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # The other organisation is unaffected.
    assert south.get("/api/settings").status_code == 200
    # An API key of the limited organisation shares its budget.
    inst.close()


def test_rate_limit_setting_is_honoured(tmp_path: Path) -> None:
    inst = _two_org_instance(tmp_path, rate_limit_per_minute=5)
    client = make_client(create_app(inst))
    login(client, "admin@north.example")
    codes = [client.get("/api/auth/me").status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    inst.close()


def test_console_pages_count_per_person_not_against_the_organisations_api_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # fmt: skip
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: 1000.0)  # no refills, however slow the box
    inst = _two_org_instance(tmp_path, rate_limit_per_minute=5)
    north = next(o.id for o in orgs.list_orgs(inst.db) if o.slug == "north")
    users.add_user(inst.db, inst.passwords, cli_context(north), north, "agent@north.example", PASSWORD, "agent")
    app = create_app(inst)
    admin, agent = make_client(app), make_client(app)
    login(admin, "admin@north.example")
    login(agent, "agent@north.example")
    assert [admin.get("/api/auth/me").status_code for _ in range(6)] == [200] * 5 + [429]
    assert agent.get("/console/inbox").status_code == 200  # the organisation's API budget is spent; the console is not
    assert [agent.get("/console/inbox").status_code for _ in range(5)] == [200] * 4 + [429]  # but each person's is
    assert admin.get("/console/inbox").status_code == 200
    inst.close()


def test_oversized_body_gets_413_and_changes_nothing(tmp_path: Path) -> None:
    inst = _two_org_instance(tmp_path, max_body_bytes=2048)
    client = make_client(create_app(inst))
    token = login(client, "admin@north.example")
    headers = {"X-CSRF-Token": token}
    big = {"email": "big@north.example", "password": PASSWORD, "role": "agent", "name": "x" * 4000}
    response = client.post("/api/users", json=big, headers=headers)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"

    # A chunked body without Content-Length is cut off as it streams in.
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b"{" + b" " * 1000

    streamed = client.post("/api/users", content=chunks(), headers={**headers, "content-type": "application/json"})
    assert streamed.status_code == 413
    members = [m["email"] for m in client.get("/api/users").json()]
    assert "big@north.example" not in members
    # Just under the limit passes.
    ok = client.post("/api/users", json={**big, "name": "x" * 100}, headers=headers)
    assert ok.status_code == 201, ok.text
    inst.close()


def test_error_shapes(inst: Instance, seed: Seed, app_client: TestClient) -> None:
    token = login(app_client, Seed.email("admin"))
    headers = {"X-CSRF-Token": token, "content-type": "application/json"}
    malformed = app_client.post("/api/users", content=b'{"email": ', headers=headers)
    assert malformed.status_code == 400
    assert malformed.json()["code"] == "malformed_json"

    missing = app_client.post("/api/users", json={"email": "x@north.example"}, headers=headers)
    assert missing.status_code == 422
    assert missing.json()["code"] == "invalid_request"

    weak = app_client.post(
        "/api/users", json={"email": "w@north.example", "password": "short", "role": "agent"}, headers=headers
    )
    assert weak.status_code == 422
    assert weak.json()["code"] == "weak_password"
    assert "short" not in weak.text  # the submitted password is never echoed

    role = app_client.post(
        "/api/users", json={"email": "r@north.example", "password": PASSWORD, "role": "overlord"}, headers=headers
    )
    assert role.status_code == 422
    assert role.json()["code"] == "unknown_role"

    dup = app_client.post(
        "/api/users", json={"email": Seed.email("agent"), "password": PASSWORD, "role": "agent"}, headers=headers
    )
    assert dup.status_code == 409
    assert dup.json()["code"] == "conflict"

    assert app_client.get("/api/nowhere").json()["code"] == "not_found"
    assert app_client.get("/api/users/999999").status_code == 404
    assert app_client.delete("/api/users").json()["code"] == "method_not_allowed"


def test_health_ready_and_metrics(inst: Instance, app_client: TestClient) -> None:
    assert app_client.get("/healthz").json() == {"status": "ok"}
    assert app_client.get("/readyz").json() == {"status": "ready"}
    app_client.get("/healthz")
    metrics = app_client.get("/metrics")
    assert metrics.status_code == 200
    assert 'appliance_http_requests_total{method="GET",route="/healthz",status="200"} 2.0' in metrics.text
    assert app_client.get("/openapi.json").json()["info"]["title"] == "Support appliance"


def test_metrics_refused_outside_allowed_networks(tmp_path: Path) -> None:
    inst = _two_org_instance(tmp_path, metrics_allowed_networks=["10.9.0.0/16"])
    client = make_client(create_app(inst))
    assert client.get("/metrics").status_code == 403
    inst.close()


def test_readyz_fails_when_migrations_are_pending(tmp_path: Path) -> None:
    inst = _two_org_instance(tmp_path)
    with inst.db.write() as conn:
        conn.execute("PRAGMA user_version = 1")
    response = make_client(create_app(inst)).get("/readyz")
    assert response.status_code == 503
    assert response.json()["code"] == "schema_not_current"
    inst.close()


def test_rate_limiter_refills_and_prunes() -> None:
    from appliance.web import ratelimit

    limiter = ratelimit.RateLimiter(per_minute=60)
    assert all(limiter.hit("org:1") is None for _ in range(60))
    wait = limiter.hit("org:1")
    assert wait is not None and 1 <= wait <= 2  # one token per second comes back
    limiter._buckets["org:1"].updated -= 2.0  # two seconds pass
    assert limiter.hit("org:1") is None
    for i in range(ratelimit.PRUNE_ABOVE):
        limiter._buckets[f"ip:{i}"] = ratelimit._Bucket(60.0, limiter._buckets["org:1"].updated - 120)
    limiter.hit("ip:new")
    assert len(limiter._buckets) < 10  # long-idle, refilled buckets were dropped; the live one stayed
    assert "org:1" in limiter._buckets
