"""The widget is served as built, with the SRI hash the snippet carries; only the visitor's calls are open to other
origins; the demo page carries the strict policy a host page needs."""

from __future__ import annotations

import base64
import hashlib

from appliance.conversations import widget
from appliance.instance import Instance, cli_context
from appliance.web.app import create_app
from tests.conftest import Seed, client_for, make_client


def test_script_sri_snippet_cors_and_demo_policy(inst: Instance, seed: Seed) -> None:
    client = make_client(create_app(inst))
    script = client.get("/widget/v1/widget.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert script.headers["access-control-allow-origin"] == "*"
    sri = "sha384-" + base64.b64encode(hashlib.sha384(script.content).digest()).decode()
    admin = client_for(inst, Seed.email("admin"))
    key = admin.post("/api/widget/keys", json={}).json()
    snippet = admin.get("/api/widget/snippet", params={"key_id": key["id"]}).json()
    assert snippet["integrity"] == sri and f'integrity="{sri}"' in snippet["snippet"]
    assert f'data-widget-key="{key["public_key"]}"' in snippet["snippet"] and "async" in snippet["snippet"]

    preflight = client.options("/api/chat/message", headers={"Origin": "https://intranet.example",
                                                             "Access-Control-Request-Method": "POST",
                                                             "Access-Control-Request-Headers": "x-visitor-session"})  # fmt: skip
    assert preflight.status_code == 204 and "x-visitor-session" in preflight.headers["access-control-allow-headers"]
    session = client.post("/api/widget/session", json={"key": key["public_key"]}, headers={"Origin": "https://intranet.example"})
    assert session.headers["access-control-allow-origin"] == "*"
    staff = admin.get("/api/users", headers={"Origin": "https://intranet.example"})
    assert "access-control-allow-origin" not in staff.headers  # staff routes stay same-origin

    assert client.get("/demo").status_code == 404  # no demo organisation here
    from appliance.auth import orgs

    demo = orgs.create_org(inst.db, cli_context(), "demo", "Demo")
    widget.create_key(inst.db, cli_context(demo.id), demo.id)
    page = client.get("/demo")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert '<script async src="/widget/v1/widget.js"' in page.text and sri in page.text
