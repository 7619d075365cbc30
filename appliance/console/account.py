"""The person's own account page (/console/account): two-step verification — set it up with an authenticator app
(QR code or the secret typed in), confirm it with a first code (then the recovery codes are shown, once), or turn
it off with password and code. A role that must use it (`mfa_required_roles`) is sent here until it is on."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response

from appliance.auth import mfa
from appliance.auth.principal import Principal
from appliance.console.render import ConsoleRoute, page
from appliance.errors import ApplianceError
from appliance.web.deps import client_addr, instance, signed_in
from appliance.web.routes.auth import person, turn_off_mfa

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
PATH = "/console/account"
Code = Annotated[str, Form(max_length=40)]


def _account(request: Request, principal: Principal, *, status: int = 200, error: str | None = None,
             enrolment: mfa.Enrolment | None = None, recovery: list[str] | None = None) -> Response:  # fmt: skip
    db, user_id = instance(request).db, person(principal)
    enabled = mfa.is_enabled(db, user_id)
    if enrolment is None and not enabled:
        enrolment = mfa.pending(db, user_id, str(principal.email))
    return page(request, "account.html", principal, status=status, error=error, enrolment=enrolment,
                recovery=recovery, enabled=enabled, left=mfa.recovery_left(db, user_id))  # fmt: skip


@router.get("/account")
def account(request: Request, principal: Principal = Depends(signed_in)) -> Response:
    return _account(request, principal)


@router.post("/account/mfa/setup")
def setup(request: Request, principal: Principal = Depends(signed_in)) -> Response:
    ctx = principal.context(client_addr(request))
    try:
        enrolment = mfa.begin(instance(request).db, ctx, person(principal), str(principal.email))
    except ApplianceError as exc:
        return _account(request, principal, status=exc.status, error=exc.message)
    return _account(request, principal, enrolment=enrolment)


@router.post("/account/mfa/enable")
def enable(request: Request, code: Code, principal: Principal = Depends(signed_in)) -> Response:
    ctx = principal.context(client_addr(request))
    try:
        codes = mfa.enable(instance(request).db, ctx, person(principal), code)
    except ApplianceError as exc:
        return _account(request, principal, status=exc.status, error=exc.message)
    return _account(request, principal, recovery=codes)


@router.post("/account/mfa/disable")
def disable(request: Request, password: Annotated[str, Form(max_length=1024)], code: Code,
            principal: Principal = Depends(signed_in)) -> Response:  # fmt: skip
    try:
        turn_off_mfa(request, principal, password, code)
    except ApplianceError as exc:
        return _account(request, principal, status=exc.status, error=exc.message)
    return _account(request, principal)
