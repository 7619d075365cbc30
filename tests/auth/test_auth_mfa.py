"""Two-step verification against the real SQLCipher store: the codes are RFC 6238's, a code is never accepted twice,
recovery codes are spent, wrong codes lock for a while, sign-in asks for the code only after a right password, and a
role that must use it can do nothing else until it is on — over the API and in the console."""

from __future__ import annotations

import base64
import re
import time
from pathlib import Path

import pyotp
import pytest

from appliance.audit.events import Context
from appliance.auth import mfa, users
from appliance.errors import MfaLocked, MfaRequired, UnknownRole, WrongMfaCode
from appliance.instance import Instance, cli_context, init_instance
from appliance.web.app import create_app
from tests.conftest import PASSWORD, Seed, client_for, make_client, make_settings

CTX = Context("test", None, None)


def member_id(inst: Instance, org_id: int, email: str) -> int:
    return next(m.id for m in users.list_members(inst.db, org_id) if m.email == email)


def turn_on(inst: Instance, user_id: int, email: str) -> tuple[str, list[str]]:
    secret = mfa.begin(inst.db, CTX, user_id, email).secret
    recovery = mfa.enable(inst.db, CTX, user_id, pyotp.TOTP(secret).now())
    return secret, recovery


def next_code(secret: str) -> str:
    """The code of the next time step (the current one was spent turning it on)."""
    return pyotp.TOTP(secret).at(time.time() + mfa.STEP_SECONDS)


def test_the_codes_are_rfc_6238s() -> None:
    secret = base64.b32encode(b"12345678901234567890").decode()  # RFC 6238 appendix B, SHA-1
    assert pyotp.TOTP(secret, digits=8).at(59) == "94287082"
    assert pyotp.TOTP(secret, digits=8).at(1111111109) == "07081804"
    assert mfa._step(secret, "287082", 0, 59) == 1  # six digits, 30-second steps, as the apps use
    assert mfa._step(secret, "287082", 1, 59) is None  # not after the step already accepted
    assert mfa._step(secret, "287082", 0, 59 + 3 * 30) is None  # outside the drift window


def test_enrolment_needs_a_right_first_code_and_gives_recovery_codes_once(inst: Instance, seed: Seed) -> None:
    email = Seed.email("agent")
    person = member_id(inst, seed.north, email)
    enrolment = mfa.begin(inst.db, CTX, person, email)
    assert enrolment.uri.startswith("otpauth://totp/") and enrolment.qr_svg.startswith("data:image/svg+xml;base64,")
    assert mfa.pending(inst.db, person, email) == enrolment
    with pytest.raises(WrongMfaCode):
        mfa.enable(inst.db, CTX, person, "000000" if pyotp.TOTP(enrolment.secret).now() != "000000" else "111111")
    assert not mfa.is_enabled(inst.db, person)  # a mistyped first code changes nothing
    recovery = mfa.enable(inst.db, CTX, person, pyotp.TOTP(enrolment.secret).now())
    assert len(set(recovery)) == 10 and mfa.is_enabled(inst.db, person) and mfa.recovery_left(inst.db, person) == 10
    with inst.db.read() as conn:
        stored = conn.execute("SELECT recovery FROM user_mfa WHERE user_id = ?", (person,)).fetchone()[0]
        changes = [r[0] for r in conn.execute("SELECT details FROM audit_events WHERE action = 'auth.mfa.changed'")]
    assert not any(code in stored for code in recovery)  # only their hashes are kept
    assert len(changes) == 2 and all(code not in "".join(changes) for code in recovery)


def test_sign_in_asks_for_the_code_after_the_password_and_never_accepts_one_twice(inst: Instance, seed: Seed) -> None:
    email = Seed.email("agent")
    secret, recovery = turn_on(inst, member_id(inst, seed.north, email), email)
    ctx = cli_context()
    with pytest.raises(MfaRequired):
        users.authenticate(inst.db, inst.passwords, ctx, email, PASSWORD)
    with pytest.raises(Exception) as wrong_password:
        users.authenticate(inst.db, inst.passwords, ctx, email, "wrong password here", code=next_code(secret))
    assert not isinstance(wrong_password.value, (MfaRequired, WrongMfaCode))  # nothing said about the code
    code = next_code(secret)
    assert users.authenticate(inst.db, inst.passwords, ctx, email, PASSWORD, code=code).email == email
    with pytest.raises(WrongMfaCode):
        users.authenticate(inst.db, inst.passwords, ctx, email, PASSWORD, code=code)  # replayed
    assert users.authenticate(inst.db, inst.passwords, ctx, email, PASSWORD, code=recovery[0].upper()).email == email
    with pytest.raises(WrongMfaCode):
        users.authenticate(inst.db, inst.passwords, ctx, email, PASSWORD, code=recovery[0])  # spent
    with inst.db.read() as conn:
        reasons = [r[0] for r in conn.execute("SELECT details FROM audit_events WHERE action = 'auth.login.failed'")]
    assert sum("second step needed" in r for r in reasons) == 1 and sum("wrong second-step" in r for r in reasons) == 2


def test_wrong_codes_in_a_row_lock_it_for_a_while(inst: Instance, seed: Seed) -> None:
    email = Seed.email("agent")
    person = member_id(inst, seed.north, email)
    secret, _ = turn_on(inst, person, email)
    now = time.time() + 60
    for _ in range(mfa.MAX_FAILURES):
        with pytest.raises(WrongMfaCode):
            mfa.check(inst.db, CTX, person, "not-a-code", now=now)
    right = pyotp.TOTP(secret).at(now)
    with pytest.raises(MfaLocked):
        mfa.check(inst.db, CTX, person, right, now=now)  # even the right code, while locked
    later = now + mfa.LOCK_SECONDS + 1
    mfa.check(inst.db, CTX, person, pyotp.TOTP(secret).at(later), now=later)


def test_a_role_that_must_use_it_can_only_set_it_up_until_it_is_on(tmp_path: Path) -> None:
    inst = init_instance(make_settings(tmp_path, mfa_required_roles="agent,admin"), cli_context())
    try:
        north = _seed_north(inst)
        agent = client_for(inst, Seed.email("agent"))
        denied = agent.get("/api/conversations")
        assert denied.status_code == 403 and "two-step verification" in denied.json()["message"]
        assert agent.get("/api/auth/me").json()["mfa"] == {"enabled": False, "required_setup": True}
        secret = agent.post("/api/auth/mfa/setup").json()["secret"]
        reply = agent.post("/api/auth/mfa/enable", json={"code": pyotp.TOTP(secret).now()})
        assert reply.status_code == 200 and len(reply.json()["recovery_codes"]) == 10
        assert agent.get("/api/conversations").status_code == 200  # now it may work
        assert client_for(inst, Seed.email("knowledge_editor")).get("/api/knowledge").status_code == 200  # not required

        again = make_client(create_app(inst))
        missing = again.post("/api/auth/login", json={"email": Seed.email("agent"), "password": PASSWORD})
        assert missing.status_code == 401 and missing.json()["code"] == "mfa_required"
        signed = again.post("/api/auth/login", json={"email": Seed.email("agent"), "password": PASSWORD,
                                                     "code": next_code(secret)})  # fmt: skip
        assert signed.status_code == 200

        admin = client_for(inst, Seed.email("admin"))  # an admin without it: cannot reset anyone yet
        agent_id = member_id(inst, north, Seed.email("agent"))
        assert admin.delete(f"/api/users/{agent_id}/mfa").status_code == 403
    finally:
        inst.close()


def _seed_north(inst: Instance) -> int:
    from appliance.auth import orgs

    org = orgs.create_org(inst.db, cli_context(), "north", "North Clinic")
    for role in ("agent", "admin", "knowledge_editor"):
        users.add_user(inst.db, inst.passwords, cli_context(org.id), org.id, Seed.email(role), PASSWORD, role)
    return org.id


def test_an_administrator_resets_a_lost_device_and_an_unknown_role_is_refused(inst: Instance, seed: Seed,
                                                                             tmp_path: Path) -> None:  # fmt: skip
    email = Seed.email("agent")
    person = member_id(inst, seed.north, email)
    turn_on(inst, person, email)
    admin = client_for(inst, Seed.email("admin"))
    assert admin.delete(f"/api/users/{member_id(inst, seed.south, Seed.email('agent', 'south'))}/mfa").status_code == 404
    assert admin.get(f"/api/users/{person}").json()["mfa"] is True
    assert admin.delete(f"/api/users/{person}/mfa").json() == {"reset": True}
    assert not mfa.is_enabled(inst.db, person)
    with inst.db.read() as conn:
        assert conn.execute("SELECT count(*) FROM audit_events WHERE action = 'auth.mfa.changed'"
                            " AND details LIKE '%reset%'").fetchone()[0] == 1  # fmt: skip
    turn_on(inst, person, email)  # lost again: this time reset from the console's team page
    page = admin.get("/console/team")
    assert "two-step on" in page.text and f'action="/console/team/users/{person}/mfa-reset"' in page.text
    csrf = {"csrf_token": admin.headers["X-CSRF-Token"]}
    other = member_id(inst, seed.south, Seed.email("agent", "south"))
    turn_on(inst, other, Seed.email("agent", "south"))
    assert admin.post(f"/console/team/users/{other}/mfa-reset", data=csrf).status_code == 404
    assert mfa.is_enabled(inst.db, other)  # another organisation's person: untouched
    assert admin.post(f"/console/team/users/{person}/mfa-reset", data=csrf, follow_redirects=False).status_code == 303
    assert not mfa.is_enabled(inst.db, person)
    with pytest.raises(UnknownRole):
        init_instance(make_settings(tmp_path / "other", mfa_required_roles="agnet"), cli_context())


def test_the_console_signs_in_with_a_code_and_sets_it_up_on_the_account_page(inst: Instance, seed: Seed) -> None:
    email = Seed.email("support_manager")
    client = make_client(create_app(inst))
    form = client.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    signed = client.post("/console/login", data={"email": email, "password": PASSWORD, "csrf_token": token},
                         follow_redirects=False)  # fmt: skip
    assert signed.status_code == 303
    account = client.get("/console/account")
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', account.text).group(1)  # type: ignore[union-attr]
    setup = client.post("/console/account/mfa/setup", data={"csrf_token": csrf})
    assert 'src="data:image/svg+xml;base64,' in setup.text
    secret = re.search(r'data-part="mfa-secret">([A-Z2-7]+)<', setup.text).group(1)  # type: ignore[union-attr]
    wrong = client.post("/console/account/mfa/enable", data={"csrf_token": csrf, "code": "12"})
    assert wrong.status_code == 401 and secret in wrong.text  # the same set-up stays on the page
    on = client.post("/console/account/mfa/enable", data={"csrf_token": csrf, "code": pyotp.TOTP(secret).now()})
    assert on.status_code == 200 and len(re.findall(r"<li><code>[0-9a-f]{6}-[0-9a-f]{6}</code></li>", on.text)) == 10

    other = make_client(create_app(inst))
    token = re.search(r'name="csrf_token" value="([^"]+)"',  # type: ignore[union-attr]
                      other.get("/console/login").text).group(1)  # fmt: skip
    asked = other.post("/console/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert asked.status_code == 401 and "authenticator app" in asked.text and " required autofocus" in asked.text
    done = other.post("/console/login", data={"email": email, "password": PASSWORD, "csrf_token": token,
                                              "code": next_code(secret)}, follow_redirects=False)  # fmt: skip
    assert done.status_code == 303 and "appliance_session" in done.headers.get("set-cookie", "")

    recovery = re.findall(r"<li><code>([0-9a-f]{6}-[0-9a-f]{6})</code></li>", on.text)
    person = member_id(inst, seed.north, email)
    wrong = client.post("/console/account/mfa/disable", data={"csrf_token": csrf, "password": "not the password",
                                                              "code": recovery[0]})  # fmt: skip
    assert wrong.status_code == 401 and mfa.is_enabled(inst.db, person)
    off = client.post("/console/account/mfa/disable", data={"csrf_token": csrf, "password": PASSWORD,
                                                            "code": recovery[0]})  # fmt: skip
    assert off.status_code == 200 and not mfa.is_enabled(inst.db, person) and "Set up two-step" in off.text
