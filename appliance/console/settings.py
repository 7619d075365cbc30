"""The settings page (/console/settings, manage_settings, as the API's /api/settings and /api/widget/keys): the
organisation's settings (the confidence threshold below which answers are refused, the emergency phrases and
article, whether the assistant answers while a conversation waits for a person), the
widget keys with their theme (previewed live as the form changes) and embed snippet with its SRI hash; for those
who also hold configure_ai, the models' status against the manifest; for manage_integrations, the webhooks with
their delivery log and redelivery.

Secrets a change creates (a widget key's identity secret) are shown once, on the page that answers the form.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response

from appliance.auth import orgs
from appliance.auth.principal import Principal
from appliance.auth.roles import Permission
from appliance.console.render import ConsoleRoute, page, see_other
from appliance.conversations import widget as widget_keys
from appliance.errors import BadInput, InvalidValue, NotFound
from appliance.inference import registry
from appliance.web.deps import client_addr, instance, requires
from appliance.web.params import Id, parse_id
from appliance.webhooks import manage
from appliance.widget.routes import HOST_CSP, built, snippet

router = APIRouter(prefix="/console/settings", route_class=ConsoleRoute, include_in_schema=False)
P = Permission
MANAGE_SETTINGS = requires(P.MANAGE_SETTINGS)
PATH = "/console/settings"
LOG_ROWS = 20
# What the widget shows when a theme leaves a field out (widget/src/styles.ts and strings.ts).
THEME_DEFAULTS = {"primary_color": "#1f5fa8", "text_color": "#ffffff", "position": "bottom-right", "title": "Support",
                  "launcher_text": "Chat with us",
                  "greeting": "Hello! Ask us a question and we will do our best to help.", "logo_url": ""}  # fmt: skip
Short = Annotated[str, Form(max_length=500)]


def _embed(request: Request, public_key: str) -> dict[str, str] | None:
    """The snippet and the host page's CSP, as GET /api/widget/snippet gives them; None when the widget is not built."""
    try:
        made = built()
    except NotFound:
        return None
    origin = str(request.base_url).rstrip("/")
    return {"snippet": snippet(origin, public_key, made.sri), "integrity": made.sri,
            "csp": HOST_CSP.format(origin=origin, ws=origin.replace("http", "ws", 1))}  # fmt: skip


def _keys(request: Request, principal: Principal) -> list[dict[str, Any]]:
    live = [k for k in widget_keys.list_keys(instance(request).db, principal.org_id) if not k.revoked]
    return [{"key": k, "theme": {**THEME_DEFAULTS, **k.theme}, "embed": _embed(request, k.public_key)} for k in live]


def _models(request: Request) -> list[dict[str, str]]:
    """Installed models (their files present or not: `appliance models verify` re-hashes them, which takes minutes
    for a large model) and the manifest's models not installed."""
    inst = instance(request)
    models_dir, rows = inst.settings.resolved_models_dir, []
    installed = registry.list_installed(inst.db)
    for record in installed:
        present = all(path.is_file() for path in record.file_paths(models_dir))
        rows.append({"name": record.name, "role": record.role, "format": record.format, "origin": record.origin,
                     "state": "files present" if present else "files missing"})  # fmt: skip
    names = {r.name for r in installed}
    try:
        manifest = registry.load_manifest(inst.settings.models_manifest)
    except (OSError, ValueError):
        manifest = []
    for spec in manifest:
        if spec.name not in names:
            rows.append({"name": spec.name, "role": spec.role, "format": spec.format,
                         "origin": f"package:{spec.source.package}", "state": "not installed"})  # fmt: skip
    return rows


def _webhooks(request: Request, principal: Principal) -> list[dict[str, Any]]:
    db = instance(request).db
    return [{"hook": h, "deliveries": manage.deliveries(db, principal.org_id, h.id, LOG_ROWS)}
            for h in manage.list_webhooks(db, principal.org_id)]  # fmt: skip


def _page(request: Request, principal: Principal, *, status: int = 200, error: str | None = None,
          key_error: tuple[int, str] | None = None, new_secret: tuple[int, str] | None = None) -> Response:  # fmt: skip
    held = principal.permissions
    return page(request, "settings.html", principal, status=status, page_name="settings",
                org=orgs.get_org(instance(request).db, principal.org_id), error=error, key_error=key_error,
                new_secret=new_secret, keys=_keys(request, principal), defaults=THEME_DEFAULTS,
                models=_models(request) if P.CONFIGURE_AI in held else None,
                webhooks=_webhooks(request, principal) if P.MANAGE_INTEGRATIONS in held else None)  # fmt: skip


@router.get("")
def settings_page(request: Request, principal: Principal = MANAGE_SETTINGS) -> Response:
    return _page(request, principal)


@router.post("")
def save_settings(request: Request, answer_threshold: Annotated[str, Form(max_length=10)],
                  name: Annotated[str, Form(max_length=200)] = "", timezone: Annotated[str, Form(max_length=64)] = "",
                  support_email: Annotated[str, Form(max_length=320)] = "",
                  emergency_terms: Annotated[str | None, Form(max_length=5000)] = None,
                  emergency_article_id: Annotated[str | None, Form(max_length=12)] = None,
                  answer_while_waiting: Annotated[str | None, Form(max_length=5)] = None,
                  principal: Principal = MANAGE_SETTINGS) -> Response:  # fmt: skip
    """The organisation's settings, as PUT /api/settings changes them (validated and audited by the domain). A field
    the form does not send is left as it is."""
    changes: dict[str, Any] = {"name": name, "timezone": timezone, "support_email": support_email}
    changes = {k: v.strip() for k, v in changes.items() if v.strip()}
    threshold = answer_threshold.strip()
    if not (threshold.isascii() and threshold.isdigit()) or not 0 <= int(threshold) <= 100:
        return _page(request, principal, status=422, error="answer_threshold: a whole number from 0 to 100")
    changes["answer_threshold"] = int(threshold)
    if emergency_terms is not None:  # one phrase a line
        changes["emergency_terms"] = [line.strip() for line in emergency_terms.splitlines() if line.strip()]
    if emergency_article_id is not None:
        try:
            changes["emergency_article_id"] = parse_id(emergency_article_id, "emergency_article_id")
        except InvalidValue:
            return _page(request, principal, status=422, error="emergency_article_id: an article number, or empty")
    if answer_while_waiting is not None:
        if answer_while_waiting not in ("on", "off"):
            return _page(request, principal, status=422, error="answer_while_waiting: on or off")
        changes["answer_while_waiting"] = answer_while_waiting == "on"
    try:
        orgs.update_org_settings(instance(request).db, principal.context(client_addr(request)), principal.org_id,
                                 changes)  # fmt: skip
    except BadInput as exc:
        return _page(request, principal, status=exc.status, error=exc.message)
    return see_other(PATH)


def _theme(primary_color: str, text_color: str, position: str, title: str, launcher_text: str, greeting: str,
           logo_url: str) -> dict[str, str]:  # fmt: skip
    """The theme as the form sends it; an empty text field leaves the widget's default."""
    fields = {"primary_color": primary_color, "text_color": text_color, "position": position, "title": title,
              "launcher_text": launcher_text, "greeting": greeting, "logo_url": logo_url}  # fmt: skip
    return {k: v.strip() for k, v in fields.items() if v.strip()}


@router.post("/widget-keys")
def create_key(request: Request, principal: Principal = MANAGE_SETTINGS) -> Response:
    """A new key with the default theme; its identity secret is on the page this answers with, and nowhere after."""
    key, secret = widget_keys.create_key(instance(request).db, principal.context(client_addr(request)),
                                         principal.org_id, {})  # fmt: skip
    return _page(request, principal, new_secret=(key.id, secret))


@router.post("/widget-keys/{key_id}/theme")
def set_theme(key_id: Id, request: Request, primary_color: Annotated[str, Form(max_length=7)] = "",
              text_color: Annotated[str, Form(max_length=7)] = "", position: Annotated[str, Form(max_length=20)] = "",
              title: Annotated[str, Form(max_length=80)] = "", launcher_text: Annotated[str, Form(max_length=40)] = "",
              greeting: Annotated[str, Form(max_length=300)] = "", logo_url: Short = "",
              principal: Principal = MANAGE_SETTINGS) -> Response:  # fmt: skip
    theme = _theme(primary_color, text_color, position, title, launcher_text, greeting, logo_url)
    try:
        widget_keys.set_theme(instance(request).db, principal.context(client_addr(request)), principal.org_id,
                              key_id, theme)  # fmt: skip
    except BadInput as exc:
        return _page(request, principal, status=exc.status, key_error=(key_id, exc.message))
    return see_other(f"{PATH}#widget-key-{key_id}")


@router.post("/widget-keys/{key_id}/revoke")
def revoke_key(key_id: Id, request: Request, principal: Principal = MANAGE_SETTINGS) -> Response:
    widget_keys.revoke_key(instance(request).db, principal.context(client_addr(request)), principal.org_id, key_id)
    return see_other(PATH)


@router.post("/webhooks/deliveries/{delivery_id}/redeliver")
def redeliver(delivery_id: Id, request: Request,
              principal: Principal = requires(P.MANAGE_INTEGRATIONS)) -> Response:  # fmt: skip
    """A failed delivery tried again with a fresh set of attempts, as the API's redeliver does."""
    manage.redeliver(instance(request).db, principal.context(client_addr(request)), principal.org_id, delivery_id)
    request.app.state.tasks.deliver_webhooks()
    return see_other(f"{PATH}#webhooks")
