"""The console's routes, under /console: sign-in and sign-out, the home page, the built assets; with the pages of
inbox.py, conversation.py, account.py, the knowledge pages, rules.py, team.py, settings.py, audit.py,
analytics.py and reviews.py, they make up ROUTERS, which the app includes.

Sign-in uses the auth domain's own functions and sets the same session cookie as `POST /api/auth/login` (same
rate limit per client address, same audit, same message whatever was wrong). Its form carries a token that must
match a cookie set with the form, so another site cannot sign a browser in to an account of its choosing.
"""

from __future__ import annotations

import hmac
import re
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request, Response

from appliance.auth import sessions, users
from appliance.auth.orgs import get_org
from appliance.auth.principal import Principal
from appliance.console import (
    account, analytics, audit, conversation, inbox, knowledge, knowledge_history, knowledge_import, reviews, rules,
    settings, team,
)  # fmt: skip
from appliance.console.render import (
    HOME_PATH, LOGIN_PATH, ConsoleRoute, assets, may_view_conversations, page, safe_next, see_other,
)  # fmt: skip
from appliance.errors import ApplianceError, CsrfFailed, InvalidCredentials, MfaLocked, MfaRequired, WrongMfaCode
from appliance.web.deps import SESSION_COOKIE, anonymous_context, instance, public, signed_in
from appliance.web.routes.auth import secure_cookies, sign_out, start_session

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
LOGIN_CSRF_COOKIE = "appliance_login_csrf"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")


def _signed_in_already(request: Request) -> Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    inst = instance(request)
    try:
        return sessions.resolve_session(inst.db, inst.session_policy, token)
    except ApplianceError:
        return None


def _login_form(request: Request, next_page: str, *, status: int = 200, error: str | None = None, email: str = "",
                org: str = "", expired: bool = False, signed_out: bool = False, need_code: bool = False) -> Response:  # fmt: skip
    # The browser's existing token is kept, so two sign-in tabs do not invalidate each other.
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    if not _TOKEN.fullmatch(token):
        token = secrets.token_urlsafe(32)
    response = page(request, "login.html", None, status=status, login_token=token, next_page=next_page, error=error,
                    email=email, org=org, expired=expired, signed_out=signed_out, need_code=need_code,
                    idle_minutes=instance(request).settings.session_idle_minutes)  # fmt: skip
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True, samesite="strict",
                        secure=secure_cookies(request), path=LOGIN_PATH)  # fmt: skip
    return response


@router.get("/login", dependencies=[Depends(public)])
def login_page(request: Request, next: Annotated[str, Query(max_length=2000)] = HOME_PATH,
               expired: bool = False, signed_out: bool = False) -> Response:  # fmt: skip
    if _signed_in_already(request) is not None:
        return see_other(safe_next(next))
    return _login_form(request, safe_next(next), expired=expired, signed_out=signed_out)


@router.post("/login", dependencies=[Depends(public)])
def login(
    request: Request, email: Annotated[str, Form(max_length=320)], password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=100)] = "", org: Annotated[str, Form(max_length=48)] = "",
    next: Annotated[str, Form(max_length=2000)] = HOME_PATH, code: Annotated[str, Form(max_length=40)] = "",
) -> Response:  # fmt: skip
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf_token, expected):
        raise CsrfFailed("missing or wrong sign-in form token")
    inst = instance(request)
    try:
        who = users.authenticate(inst.db, inst.passwords, anonymous_context(request), email, password, org or None,
                                 code or None)  # fmt: skip
    except MfaRequired:
        return _login_form(request, safe_next(next), status=401, email=email, org=org, need_code=True,
                           error="Enter the code from your authenticator app, with your password again.")  # fmt: skip
    except MfaLocked:
        return _login_form(request, safe_next(next), status=401, email=email, org=org, need_code=True,
                           error="Too many wrong codes: try again in a few minutes.")  # fmt: skip
    except WrongMfaCode:
        return _login_form(request, safe_next(next), status=401, error="Wrong code.", email=email, org=org,
                           need_code=True)  # fmt: skip
    except InvalidCredentials:
        return _login_form(request, safe_next(next), status=401, error="Wrong email or password.", email=email, org=org)
    response = see_other(safe_next(next))
    start_session(request, response, who)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=LOGIN_PATH)
    return response


@router.post("/logout")
def logout(request: Request, principal: Principal = Depends(signed_in),
           everywhere: Annotated[bool, Form()] = False) -> Response:  # fmt: skip
    response = see_other(f"{LOGIN_PATH}?signed_out=1")
    sign_out(request, response, principal, everywhere)
    return response


@router.get("/")
def home(request: Request, principal: Principal = Depends(signed_in)) -> Response:
    """The inbox for those who handle conversations; for other roles, a page saying where their work is."""
    if principal.mfa_missing:
        return see_other("/console/account")
    if may_view_conversations(principal):
        return see_other("/console/inbox")
    org = get_org(instance(request).db, principal.org_id)
    return page(request, "home.html", principal, org_name=org.name)


@router.get("/static/{content_hash}/{name}", dependencies=[Depends(public)])
def static_asset(content_hash: str, name: str) -> Response:
    body, media_type = assets.read(content_hash, name)
    return Response(body, media_type=media_type, headers={"Cache-Control": "public, max-age=31536000, immutable"})


# Each router carries its full prefix (an included router's routes keep the paths they were declared with, which
# the access log, the metrics and the denial audit report).
# knowledge_import before knowledge: its /console/knowledge/import and /flags are not article ids.
ROUTERS = (router, inbox.router, conversation.router, account.router, knowledge_import.router, knowledge.router,
           knowledge_history.router, rules.router, team.router, settings.router, audit.router, analytics.router,
           reviews.router)
