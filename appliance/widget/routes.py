"""Serving the widget.

- `GET /widget/v1/widget.js`: the built script (widget/dist, built with esbuild at install), immutable per version,
  sent with `Access-Control-Allow-Origin: *` so an intranet page on another origin can load it with an `integrity`
  attribute.
- `GET /api/widget/snippet`: the one-tag embed snippet for a widget key, with the script's SRI hash (admins).
- `GET /demo`: a demo intranet page with the widget embedded for the demo organisation, served under a strict
  Content-Security-Policy (no inline script, no eval): the same policy a host page needs.

The visitor's calls (`/api/widget/session`, `/api/chat/…`, the CSAT) authenticate with a header, never a cookie,
so any origin may make them: the CORS middleware answers their preflights.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from appliance.auth.principal import Principal
from appliance.auth.roles import Permission
from appliance.conversations import widget as keys
from appliance.errors import NotFound
from appliance.web.deps import instance, public, requires
from appliance.web.params import Id

DIST = Path(__file__).resolve().parents[2] / "widget" / "dist"
VERSION = "v1"
SCRIPT_PATH = f"/widget/{VERSION}/widget.js"
DEMO_ORG = "demo"

router = APIRouter(tags=["widget"])


@dataclass(frozen=True)
class Built:
    script: bytes
    sri: str  # "sha384-…"


def built() -> Built:
    """The built script and its SRI hash (from the build's manifest); NotFound when the widget was not built."""
    script, meta = DIST / "widget.js", DIST / "widget.json"
    if not script.is_file() or not meta.is_file():
        raise NotFound("the widget is not built: run `npm --prefix widget ci && npm --prefix widget run build`")
    info = json.loads(meta.read_text("utf-8"))
    return Built(script.read_bytes(), f"sha384-{info['sha384']}")


def snippet(origin: str, public_key: str, sri: str) -> str:
    return (f'<script async src="{origin}{SCRIPT_PATH}" integrity="{sri}" crossorigin="anonymous" '
            f'data-widget-key="{html.escape(public_key)}"></script>')  # fmt: skip


@router.get(SCRIPT_PATH, dependencies=[Depends(public)], include_in_schema=False)
def widget_script() -> Response:
    made = built()
    return Response(made.script, media_type="text/javascript; charset=utf-8", headers={
        "Cache-Control": "public, max-age=31536000, immutable", "Access-Control-Allow-Origin": "*",
        "Cross-Origin-Resource-Policy": "cross-origin", "X-Content-Type-Options": "nosniff",
    })  # fmt: skip


@router.get("/api/widget/snippet", summary="The embed snippet (one script tag with its SRI hash) for a widget key")
def embed_snippet(request: Request, key_id: Id,
                  principal: Principal = requires(Permission.MANAGE_SETTINGS)) -> dict[str, Any]:  # fmt: skip
    key = next((k for k in keys.list_keys(instance(request).db, principal.org_id) if k.id == key_id), None)
    if key is None or key.revoked:
        raise NotFound(f"widget key {key_id} not found")
    made = built()
    origin = str(request.base_url).rstrip("/")
    return {"snippet": snippet(origin, key.public_key, made.sri), "integrity": made.sri, "src": origin + SCRIPT_PATH,
            "csp": HOST_CSP.format(origin=origin, ws=origin.replace("http", "ws", 1))}  # fmt: skip


# What a host page needs: the appliance may serve scripts and be connected to (HTTP and WebSocket); nothing inline.
HOST_CSP = ("default-src 'self'; script-src 'self' {origin}; connect-src 'self' {origin} {ws}; "
            "img-src 'self' {origin} data:; style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")  # fmt: skip

_DEMO_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Riverside Clinic intranet (demo)</title>
<link rel="stylesheet" href="/demo/page.css">
<link rel="icon" href="data:,">
</head>
<body>
<header><h1>Riverside Clinic intranet</h1><p>Staff and patient services</p></header>
<main>
<h2>Welcome</h2>
<p>This page stands in for an intranet page. The chat button in the corner is the support widget: ask it about
portal passwords, appointments, billing or visiting hours, or ask for a person.</p>
<ul><li><a href="/demo?page=2">Another page</a> (the conversation follows you)</li></ul>
</main>
{script}
</body>
</html>
"""

_DEMO_CSS = """body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#1b1b1b;background:#f6f7f9}
header{background:#0b3d6e;color:#fff;padding:1rem 2rem}header p{margin:0}main{padding:1rem 2rem;max-width:48rem}
a{color:#0b5cad}"""


@router.get("/demo", dependencies=[Depends(public)], include_in_schema=False)
def demo_page(request: Request) -> HTMLResponse:
    inst = instance(request)
    from appliance.auth import orgs

    try:
        org = orgs.get_org_by_slug(inst.db, DEMO_ORG)
    except NotFound:
        raise NotFound("there is no demo organisation here (start with `appliance demo`)") from None
    active = [k for k in keys.list_keys(inst.db, org.id) if not k.revoked]
    if not active:
        raise NotFound("the demo organisation has no widget key")
    made = built()
    tag = snippet("", active[0].public_key, made.sri)
    origin = str(request.base_url).rstrip("/")
    csp = HOST_CSP.format(origin=origin, ws=origin.replace("http", "ws", 1))
    return HTMLResponse(_DEMO_PAGE.format(script=tag), headers={"Content-Security-Policy": csp})


@router.get("/demo/page.css", dependencies=[Depends(public)], include_in_schema=False)
def demo_css() -> Response:
    return Response(_DEMO_CSS, media_type="text/css; charset=utf-8")
