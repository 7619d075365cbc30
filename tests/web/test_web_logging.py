"""One structured line per request, and nothing from bodies, passwords, tokens or query strings."""

from __future__ import annotations

import io
import json
import logging

from appliance.instance import Instance
from appliance.logs import JsonFormatter
from tests.conftest import PASSWORD, Seed, client_for

SECRET_NAME = "Name-That-Must-Not-Be-Logged"


def test_request_log_has_fields_but_no_secrets(inst: Instance, seed: Seed) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("appliance")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        admin = client_for(inst, Seed.email("admin"))
        admin.post("/api/users", json={"email": "logged@north.example", "password": PASSWORD, "role": "agent", "name": SECRET_NAME})
        admin.get("/api/audit/events?action=secret-query-value")
        admin.post("/api/auth/login", json={"email": Seed.email("admin"), "password": "wrong-password-value"})
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    requests = [entry for entry in lines if entry["event"] == "request"]
    assert len(requests) == 4
    created = next(e for e in requests if e["route"] == "/api/users" and e["method"] == "POST")
    assert created["status"] == 201 and created["org_id"] == seed.north and created["actor"].startswith("user:")
    assert {"request_id", "ms", "ts", "level"} <= created.keys()
    for secret in (PASSWORD, SECRET_NAME, "wrong-password-value", "secret-query-value", admin.headers["X-CSRF-Token"]):
        assert secret not in text
