"""How console pages are made and protected: the Jinja2 templates, the navigation a role sees, the security headers
every response carries, and errors turned into pages (an anonymous or expired session goes to sign-in; a missing
permission or CSRF token gets a 403 page, never a redirect loop).

Every console route is a `ConsoleRoute`: its handler, dependencies included, runs inside the error-to-page mapping
below, and its response gets the headers, whatever happened.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined

from appliance.auth.principal import Principal
from appliance.auth.roles import Permission
from appliance.console.assets import Assets
from appliance.errors import (
    ApplianceError, CsrfFailed, NotAuthenticated, NotFound, PermissionDenied, RateLimited, SessionExpired,
)  # fmt: skip
from appliance.web.deps import SESSION_COOKIE, instance

log = logging.getLogger("appliance.console")

P = Permission
VIEW_CONVERSATIONS = (P.VIEW_ALL_CONVERSATIONS, P.VIEW_ASSIGNED_CONVERSATIONS)
LOGIN_PATH = "/console/login"
HOME_PATH = "/console/"
_MARK = re.compile(r" ?\[\d+\]")
_HOST = re.compile(r"[A-Za-z0-9.\-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")


@dataclass(frozen=True)
class Section:
    label: str
    permissions: tuple[Permission, ...]
    path: str | None = None  # None: that page is not built yet, and is not linked


SECTIONS = (
    Section("Inbox", VIEW_CONVERSATIONS, "/console/inbox"),
    Section("Knowledge", (P.EDIT_ARTICLES, P.MANAGE_KNOWLEDGE_BASE), "/console/knowledge"),
    Section("Rules", (P.CONFIGURE_ESCALATIONS,), "/console/rules"),
    Section("Team", (P.MANAGE_TEAM, P.MANAGE_AGENTS), "/console/team"),
    Section("Settings", (P.MANAGE_SETTINGS,), "/console/settings"),
    Section("Analytics", (P.VIEW_ANALYTICS,), "/console/analytics"),
    Section("Reviews", (P.REVIEW_AI_RESPONSES,), "/console/reviews"),
    Section("Audit", (P.VIEW_AUDIT,), "/console/audit"),
)


def navigation(permissions: frozenset[Permission]) -> list[Section]:
    """The built sections this set of permissions (a role's, from roles.ROLE_PERMISSIONS) may open."""
    return [s for s in SECTIONS if s.path is not None and any(p in permissions for p in s.permissions)]


def may_view_conversations(principal: Principal) -> bool:
    return any(p in principal.permissions for p in VIEW_CONVERSATIONS)


def _when(iso: str | None) -> str:
    """Stored UTC timestamps as people read them: 2026-03-01 09:05 UTC."""
    return f"{iso[:10]} {iso[11:16]} UTC" if iso and len(iso) >= 16 else (iso or "")


def uncited(text: str | None) -> str:
    """A drafted answer as an agent's reply: without its citation marks ([1]), which point to sources that a
    person's message does not carry."""
    return _MARK.sub("", text or "")


def _words(value: str | None) -> str:
    text = (value or "").replace("_", " ")
    return text[:1].upper() + text[1:]


def _percent(ratio: float | None) -> str:
    """A rate as people read it (0.6667 -> 66.7%); a dash when there was nothing to divide by."""
    return "–" if ratio is None else f"{ratio * 100:.1f}%"


def _duration(seconds: float | None) -> str:
    """Seconds as people read them: 6.5 s, 3 min 20 s, 2 h 5 min; a dash when nothing was measured."""
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:g} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s" if whole % 60 else f"{whole // 60} min"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def _decimal(value: float | None, places: int = 1) -> str:
    return "–" if value is None else f"{value:.{places}f}"


_env = Environment(loader=PackageLoader("appliance.console", "templates"), autoescape=True,
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)  # fmt: skip
_env.filters["uncited"] = uncited
_env.filters["when"] = _when
_env.filters["words"] = _words
_env.filters["percent"] = _percent
_env.filters["duration"] = _duration
_env.filters["decimal"] = _decimal
assets = Assets()


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def page(request: Request, template: str, principal: Principal | None, *, status: int = 200,
         live: bool = False, **context: Any) -> HTMLResponse:  # fmt: skip
    """A page (or, for htmx, a fragment) with what every template may use: who is signed in, their navigation and
    CSRF token, and the assets' URLs."""
    html = _env.get_template(template).render(
        request_path=request.url.path, principal=principal, nav=navigation(principal.permissions) if principal else [],
        csrf_token=principal.csrf_token if principal else None, asset=assets.get, live=live, **context,
    )  # fmt: skip
    return HTMLResponse(html, status_code=status)


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console page of this site only (no other host, no scheme, no loop)."""
    if not target or "\\" in target or target.startswith("//"):
        return HOME_PATH
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console"):
        return HOME_PATH
    if parts.path.startswith((LOGIN_PATH, "/console/static", "/console/logout")):
        return HOME_PATH
    return target


def _sign_in(request: Request, expired: bool) -> Response:
    wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = f"{LOGIN_PATH}?next={quote(safe_next(wanted) if request.method == 'GET' else HOME_PATH, safe='')}"
    if expired:
        target += "&expired=1"
    if is_htmx(request):  # a fragment request must not swap the sign-in page into the list: htmx navigates instead
        response: Response = Response(status_code=401, headers={"HX-Redirect": target})
    else:
        response = see_other(target)
    if expired:
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _back(request: Request) -> str:
    referer = urlsplit(request.headers.get("referer", ""))
    same_site = referer.netloc in ("", request.headers.get("host", ""))
    return safe_next(referer.path + (f"?{referer.query}" if referer.query else "")) if same_site else HOME_PATH


def _error_page(request: Request, status: int, title: str, message: str,
                headers: dict[str, str] | None = None) -> Response:  # fmt: skip
    principal = getattr(request.state, "principal", None)
    response = page(request, "error.html", principal, status=status, title=title, message=message, back=_back(request))
    if headers:
        response.headers.update(headers)
    return response


def failure(request: Request, exc: Exception) -> Response:
    """An error as a page. Messages are the domain's own (they never carry customer text or secrets)."""
    if isinstance(exc, NotAuthenticated):
        return _sign_in(request, expired=isinstance(exc, SessionExpired))
    if isinstance(exc, CsrfFailed):
        return _error_page(request, 403, "This form has expired",
                           "The form was not sent from this console page, or it is out of date. Nothing was changed: "
                           "go back, reload the page and try again.")  # fmt: skip
    if isinstance(exc, PermissionDenied):
        return _error_page(request, 403, "Not allowed", f"Your role may not open this page: {exc.message}.")
    if isinstance(exc, NotFound):
        return _error_page(request, 404, "Not found", exc.message)
    if isinstance(exc, RateLimited):
        return _error_page(request, 429, "Too many requests", "Wait a moment, then try again.",
                           {"Retry-After": str(exc.retry_after)})  # fmt: skip
    if isinstance(exc, RequestValidationError):
        fields = sorted({str(e.get("loc", ("", ""))[-1]) for e in exc.errors()})
        return _error_page(request, 422, "Check the form", f"Missing or invalid: {', '.join(fields)}.")
    if isinstance(exc, ApplianceError):
        if exc.status >= 500:
            log.warning("console request failed", extra={"fields": {"code": exc.code, "status": exc.status}})
        return _error_page(request, exc.status, "That did not work", exc.message)
    log.error("unhandled console error", exc_info=(type(exc), exc, exc.__traceback__))
    return _error_page(request, 500, "Something went wrong", "The error was logged. Try again in a moment.")


def _connect_src(request: Request) -> str:
    host = request.headers.get("host", "")
    if not _HOST.fullmatch(host):
        return "'self'"
    tls = request.url.scheme == "https" or instance(request).settings.force_secure_cookies
    return f"'self' {'wss' if tls else 'ws'}://{host}"


def secure(request: Request, response: Response) -> None:
    """The headers every console response carries: a CSP with no inline script or style and no framing, no
    referrer to other sites, and (unless the response says otherwise, as assets do) no caching: pages show
    customer conversations."""
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src {_connect_src(request)}; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers.setdefault("Cache-Control", "no-store")


class ConsoleRoute(APIRoute):
    """A console route: errors (from the handler or its dependencies) become pages, and every response is secured."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                response = await handler(request)
            except Exception as exc:
                response = failure(request, exc)
            secure(request, response)
            return response

        return handle
