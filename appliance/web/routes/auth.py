"""Sign-in, sign-out, the current principal, password change. `start_session` and `sign_out` also serve the web
console's sign-in and sign-out forms, so both set and clear the same cookie the same way."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from appliance.auth import mfa, sessions, users
from appliance.auth.orgs import get_org
from appliance.auth.principal import Principal
from appliance.errors import InvalidCredentials
from appliance.web.deps import SESSION_COOKIE, anonymous_context, client_addr, instance, public, signed_in

router = APIRouter(prefix="/api/auth", tags=["auth"])


class LoginRequest(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)
    org: str | None = Field(default=None, max_length=48, description="Organisation slug (needed with several)")
    code: str | None = Field(default=None, max_length=40, description="Two-step code (or a recovery code)")


class LogoutRequest(BaseModel):
    everywhere: bool = False


class PasswordChange(BaseModel):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


def _me(request: Request, principal: Principal) -> dict[str, Any]:
    org = get_org(instance(request).db, principal.org_id)
    return {
        "kind": principal.kind,
        "id": principal.id,
        "email": principal.email,
        "role": principal.role,
        "permissions": sorted(p.value for p in principal.permissions),
        "org": {"id": org.id, "slug": org.slug, "name": org.name},
        "csrf_token": principal.csrf_token,
        "mfa": {"enabled": principal.kind == "user" and mfa.is_enabled(instance(request).db, principal.id),
                "required_setup": principal.mfa_missing},
    }


def secure_cookies(request: Request) -> bool:
    return request.url.scheme == "https" or instance(request).settings.force_secure_cookies


def start_session(request: Request, response: Response, who: users.Authenticated) -> sessions.NewSession:
    """A new session for a person who has just authenticated; its cookie is set on the response."""
    inst = instance(request)
    sessions.purge_expired_sessions(inst.db, inst.session_policy)
    session = sessions.create_session(inst.db, inst.session_policy, who.user_id, who.org_id, client_addr(request))
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        max_age=inst.settings.session_max_hours * 3600,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
        path="/",
    )
    return session


def sign_out(request: Request, response: Response, principal: Principal, everywhere: bool) -> int:
    """End this session (or every session of the person) and clear the cookie; returns the sessions ended."""
    if principal.kind != "user":
        return 0
    ended = sessions.end_session(
        instance(request).db, principal.context(client_addr(request)), principal, everywhere=everywhere
    )
    response.delete_cookie(SESSION_COOKIE, path="/")
    return ended


@router.post("/login", dependencies=[Depends(public)], summary="Sign in with email and password")
def login(body: LoginRequest, request: Request, response: Response) -> dict[str, Any]:
    inst = instance(request)
    who = users.authenticate(inst.db, inst.passwords, anonymous_context(request), body.email, body.password, body.org,
                             body.code)  # fmt: skip
    session = start_session(request, response, who)
    principal = sessions.resolve_session(inst.db, inst.session_policy, session.token)
    return {**_me(request, principal), "expires_at": session.expires_at}


@router.post("/logout", summary="Sign out here, or everywhere")
def logout(
    body: LogoutRequest, request: Request, response: Response, principal: Principal = Depends(signed_in)
) -> dict[str, int]:
    return {"sessions_ended": sign_out(request, response, principal, body.everywhere)}


@router.get("/me", summary="Who is signed in, with role, permissions and CSRF token")
def me(request: Request, principal: Principal = Depends(signed_in)) -> dict[str, Any]:
    return _me(request, principal)


@router.post("/password", summary="Change your own password (ends your other sessions)")
def change_password(
    body: PasswordChange, request: Request, principal: Principal = Depends(signed_in)
) -> dict[str, str]:
    inst = instance(request)
    if principal.kind != "user" or principal.email is None:
        raise InvalidCredentials("API keys have no password")
    users.check_password(inst.db, inst.passwords, principal.id, body.current_password)
    users.change_password(
        inst.db, inst.passwords, principal.context(client_addr(request)), principal.id, body.new_password,
        keep_session=principal.session_id,
    )  # fmt: skip
    return {"status": "changed"}


class MfaCode(BaseModel):
    code: str = Field(max_length=40)


class MfaOff(BaseModel):
    password: str = Field(max_length=1024)
    code: str = Field(max_length=40)


def person(principal: Principal) -> int:
    """The signed-in person's user id; API keys have no two-step verification."""
    if principal.kind != "user" or principal.email is None:
        raise InvalidCredentials("API keys have no two-step verification")
    return principal.id


def turn_off_mfa(request: Request, principal: Principal, password: str, code: str) -> None:
    """Two-step verification off, with the password and a current code; the console's Account page calls it too."""
    inst, user_id = instance(request), person(principal)
    users.check_password(inst.db, inst.passwords, user_id, password)
    ctx = principal.context(client_addr(request))
    mfa.check(inst.db, ctx, user_id, code)
    mfa.disable(inst.db, ctx, user_id)


@router.post("/mfa/setup", summary="Start two-step verification: a new secret, its otpauth address and QR code")
def mfa_setup(request: Request, principal: Principal = Depends(signed_in)) -> dict[str, str]:
    enrolment = mfa.begin(instance(request).db, principal.context(client_addr(request)), person(principal),
                          str(principal.email))  # fmt: skip
    return {"secret": enrolment.secret, "otpauth_uri": enrolment.uri, "qr_svg": enrolment.qr_svg}


@router.post("/mfa/enable", summary="Turn two-step verification on with a first code; returns recovery codes once")
def mfa_enable(body: MfaCode, request: Request, principal: Principal = Depends(signed_in)) -> dict[str, Any]:
    codes = mfa.enable(instance(request).db, principal.context(client_addr(request)), person(principal), body.code)
    return {"enabled": True, "recovery_codes": codes}


@router.post("/mfa/disable", summary="Turn two-step verification off (password and a current code)")
def mfa_disable(body: MfaOff, request: Request, principal: Principal = Depends(signed_in)) -> dict[str, bool]:
    turn_off_mfa(request, principal, body.password, body.code)
    return {"enabled": False}
