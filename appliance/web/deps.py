"""Request dependencies: who is asking, the rate limit, CSRF, and the one permission check.

Every route declares exactly one access rule through these dependencies: `requires(P)` for a permission,
`signed_in` for any authenticated principal, `public` or `monitoring` for unauthenticated endpoints. A test walks
all routes and fails on a route that declares none or differs from the declared matrix.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request

from appliance import audit
from appliance.audit.events import AccessDenied, Context
from appliance.auth.apikeys import resolve_key
from appliance.auth.principal import Principal
from appliance.auth.roles import Permission
from appliance.auth.sessions import resolve_session
from appliance.conversations.widget import Visitor
from appliance.errors import CsrfFailed, NotAuthenticated, PermissionDenied, RateLimited
from appliance.instance import Instance
from appliance.web.ratelimit import RateLimiter

SESSION_COOKIE = "appliance_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FORM_FIELD = "csrf_token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

# Markers read by the route-matrix test (and by nothing else).
PUBLIC = "public"
MONITORING = "monitoring"
SIGNED_IN = "signed_in"
VISITOR = "visitor"
VISITOR_HEADER = "x-visitor-session"


def instance(request: Request) -> Instance:
    inst: Instance = request.app.state.instance
    return inst


def knowledge_changed(request: Request, org_id: int) -> None:
    """Articles changed: bring the organisation's retrieval index up to date (a background task carrying the id)."""
    request.app.state.tasks.index_org(org_id)


def client_addr(request: Request) -> str | None:
    return request.client.host if request.client else None


def anonymous_context(request: Request) -> Context:
    return Context("anonymous", None, client_addr(request))


def _limit(request: Request, key: str) -> None:
    limiter: RateLimiter = request.app.state.rate_limiter
    wait = limiter.hit(key)
    if wait is not None:
        request.app.state.metrics.rate_limited.labels(key.split(":")[0]).inc()
        raise RateLimited("too many requests; slow down", retry_after=wait)


async def _check_csrf(request: Request, principal: Principal) -> None:
    """Cookie-authenticated changes must echo the session's CSRF token (header, or form field for form posts).
    SameSite=Strict already stops most cross-site requests; this covers the rest."""
    if request.method in SAFE_METHODS or principal.csrf_token is None:
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FORM_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent, principal.csrf_token):
        raise CsrfFailed("missing or wrong CSRF token")


async def _signed_in(request: Request) -> Principal:
    inst = instance(request)
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        principal = resolve_key(inst.db, header[7:].strip(), client_addr(request))
    else:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            raise NotAuthenticated("sign in first")
        principal = resolve_session(inst.db, inst.session_policy, token)
        await _check_csrf(request, principal)
    request.state.principal = principal
    # The API's budget is the organisation's; console pages, paced by people, count per person, so that a busy
    # team's inboxes (and an integration's API calls) never lock the other agents out of theirs.
    console = request.url.path.startswith("/console/")
    _limit(request, f"person:{principal.actor}" if console else f"org:{principal.org_id}")
    return principal


def _deny(request: Request, principal: Principal, needed: str) -> PermissionDenied:
    route = request.scope.get("route")
    audit.record_alone(
        instance(request).db,
        principal.context(client_addr(request)),
        AccessDenied(needed, f"{request.method} {getattr(route, 'path', request.url.path)}"),
        "denied",
    )
    if principal.mfa_missing:
        return PermissionDenied("set up two-step verification first (POST /api/auth/mfa/setup, or the console's "
                                "Account page): your role requires it")  # fmt: skip
    return PermissionDenied(f"this needs the {needed} permission")


def _mark(fn: Callable[..., Any], rule: str) -> Callable[..., Any]:
    fn.access_rule = rule  # type: ignore[attr-defined]
    return fn


signed_in = _mark(_signed_in, SIGNED_IN)


def requires(permission: Permission) -> Any:
    async def check(request: Request, principal: Principal = Depends(signed_in)) -> Principal:
        if permission not in principal.permissions:
            raise _deny(request, principal, permission.value)
        return principal

    _mark(check, permission.value)
    return Depends(check)


def requires_any(*permissions: Permission) -> Any:
    """One of several permissions (e.g. viewing assigned or all conversations); the rule reads `a|b`."""
    rule = "|".join(p.value for p in permissions)

    async def check(request: Request, principal: Principal = Depends(signed_in)) -> Principal:
        if not any(p in principal.permissions for p in permissions):
            raise _deny(request, principal, " or ".join(p.value for p in permissions))
        return principal

    _mark(check, rule)
    return Depends(check)


def visitor_from(request: Request, token: str | None) -> Visitor:
    if not token:
        raise NotAuthenticated("a visitor session is needed (POST /api/widget/session)")
    visitor = instance(request).widget_sessions.verify(anonymous_context(request), token)
    request.state.visitor = visitor
    _limit(request, f"visitor:{visitor.visitor_id}")
    return visitor


async def _visitor(request: Request) -> Visitor:
    return visitor_from(request, request.headers.get(VISITOR_HEADER))


visitor = _mark(_visitor, VISITOR)


@dataclass(frozen=True)
class Caller:
    """A widget visitor, or a signed-in person or API key acting for customers."""

    visitor: Visitor | None
    principal: Principal | None

    @property
    def org_id(self) -> int:
        if self.visitor is not None:
            return self.visitor.org_id
        assert self.principal is not None
        return self.principal.org_id

    def context(self, client_addr: str | None) -> Context:
        if self.visitor is not None:
            return self.visitor.context(client_addr)
        assert self.principal is not None
        return self.principal.context(client_addr)

    @property
    def sender(self) -> str:
        if self.visitor is not None:
            return self.visitor.sender
        assert self.principal is not None
        return self.principal.context(None).actor


def visitor_or(permission: Permission) -> Any:
    """A visitor session (header X-Visitor-Session), or else a principal holding the permission."""

    async def check(request: Request) -> Caller:
        token = request.headers.get(VISITOR_HEADER)
        if token is not None:
            return Caller(visitor_from(request, token), None)
        principal = await _signed_in(request)
        if permission not in principal.permissions:
            raise _deny(request, principal, permission.value)
        return Caller(None, principal)

    _mark(check, f"{VISITOR}|{permission.value}")
    return Depends(check)


async def _public(request: Request) -> None:
    # Unauthenticated endpoints are limited per client address instead of per organisation.
    _limit(request, f"ip:{client_addr(request)}")


public = _mark(_public, PUBLIC)


def _monitoring(request: Request) -> None:
    allowed = request.app.state.metrics_networks
    addr = client_addr(request)
    try:
        ip = ipaddress.ip_address(addr or "")
    except ValueError:
        ip = None
    if ip is None or not any(ip in net for net in allowed):
        raise PermissionDenied("metrics are readable only from the allowed monitoring networks")


monitoring = _mark(_monitoring, MONITORING)


def access_rule_of(dependency: Callable[..., Any]) -> str | None:
    rule = getattr(dependency, "access_rule", None)
    return rule if isinstance(rule, str) else None
