"""Users and their memberships. A user signs in with email and password; each membership gives one role in one
organisation."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from appliance import audit
from appliance.audit.events import (
    Context,
    LoginFailed,
    LoginSucceeded,
    MemberAdded,
    PasswordChanged,
    RoleChanged,
    UserCreated,
    UserDisabled,
)
from appliance.auth import mfa
from appliance.auth.passwords import Passwords
from appliance.auth.roles import Role, parse_role
from appliance.errors import Conflict, InvalidCredentials, InvalidValue, MfaRequired, NotFound, WrongMfaCode
from appliance.store import Connection, Database, now_iso

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")


@dataclass(frozen=True)
class Member:
    id: int
    email: str
    name: str
    role: Role
    disabled: bool
    created_at: str
    last_login_at: str | None
    mfa: bool = False  # two-step verification is on


def normalise_email(email: str) -> str:
    email = email.strip()
    if not _EMAIL.match(email):
        raise InvalidValue(f"{email!r} is not an email address")
    return email.lower()


def _member(row: Any) -> Member:
    return Member(
        row["id"], row["email"], row["name"], Role(row["role"]), bool(row["disabled"]), row["created_at"],
        row["last_login_at"], row["mfa_on"] is not None,
    )  # fmt: skip


_MEMBER_SELECT = (
    "SELECT u.id, u.email, u.name, u.disabled, u.created_at, u.last_login_at, m.role, f.enabled_at AS mfa_on "
    "FROM users u JOIN memberships m ON m.user_id = u.id LEFT JOIN user_mfa f ON f.user_id = u.id"
)


def add_user(
    db: Database, passwords: Passwords, ctx: Context, org_id: int, email: str, password: str, role: str, name: str = ""
) -> Member:
    """Create a user with a role in org_id. An existing user (another clinic of the group) is a conflict: add a
    membership with `add_membership` instead, so nobody's password is reset by accident."""
    email = normalise_email(email)
    parsed_role = parse_role(role)
    if len(name) > 200:
        raise InvalidValue("name must be at most 200 characters")
    passwords.check_policy(password, email)
    password_hash = passwords.hash(password)
    with db.write() as conn:
        if conn.execute("SELECT 1 FROM users WHERE email = ?", (email,)).fetchone():
            raise Conflict(f"a user with email {email} already exists")
        if not conn.execute("SELECT 1 FROM orgs WHERE id = ?", (org_id,)).fetchone():
            raise NotFound(f"organisation {org_id} not found")
        now = now_iso()
        cur = conn.execute(
            "INSERT INTO users (email, name, password_hash, created_at, password_changed_at) VALUES (?, ?, ?, ?, ?)",
            (email, name.strip(), password_hash, now, now),
        )
        user_id = int(cur.lastrowid or 0)
        conn.execute(
            "INSERT INTO memberships (user_id, org_id, role, created_at) VALUES (?, ?, ?, ?)",
            (user_id, org_id, parsed_role.value, now),
        )
        audit.record(conn, ctx, UserCreated(user_id, email, parsed_role.value))
    return get_member(db, org_id, user_id)


def add_membership(db: Database, ctx: Context, org_id: int, email: str, role: str) -> Member:
    email = normalise_email(email)
    parsed_role = parse_role(role)
    with db.write() as conn:
        row = conn.execute("SELECT id FROM users WHERE email = ?", (email,)).fetchone()
        if row is None:
            raise NotFound(f"no user with email {email}")
        if conn.execute("SELECT 1 FROM memberships WHERE user_id = ? AND org_id = ?", (row["id"], org_id)).fetchone():
            raise Conflict(f"{email} is already a member of this organisation")
        conn.execute(
            "INSERT INTO memberships (user_id, org_id, role, created_at) VALUES (?, ?, ?, ?)",
            (row["id"], org_id, parsed_role.value, now_iso()),
        )
        audit.record(conn, ctx, MemberAdded(row["id"], parsed_role.value))
    return get_member(db, org_id, row["id"])


def get_member(db: Database, org_id: int, user_id: int) -> Member:
    with db.read() as conn:
        row = conn.execute(_MEMBER_SELECT + " WHERE m.org_id = ? AND u.id = ?", (org_id, user_id)).fetchone()
    if row is None:
        raise NotFound(f"user {user_id} not found")
    return _member(row)


def find_member_by_email(db: Database, org_id: int, email: str) -> Member:
    with db.read() as conn:
        row = conn.execute(
            _MEMBER_SELECT + " WHERE m.org_id = ? AND u.email = ?", (org_id, normalise_email(email))
        ).fetchone()
    if row is None:
        raise NotFound(f"no member with email {email} in this organisation")
    return _member(row)


def list_members(db: Database, org_id: int) -> list[Member]:
    with db.read() as conn:
        return [_member(r) for r in conn.execute(_MEMBER_SELECT + " WHERE m.org_id = ? ORDER BY u.email", (org_id,))]


def _admins_left(conn: Connection, org_id: int, excluding: int) -> int:
    return int(
        conn.execute(
            "SELECT count(*) FROM memberships m JOIN users u ON u.id = m.user_id "
            "WHERE m.org_id = ? AND m.role = 'admin' AND u.disabled = 0 AND u.id != ?",
            (org_id, excluding),
        ).fetchone()[0]
    )


def set_role(db: Database, ctx: Context, org_id: int, user_id: int, role: str) -> Member:
    new_role = parse_role(role)
    with db.write() as conn:
        row = conn.execute(
            "SELECT role FROM memberships WHERE org_id = ? AND user_id = ?", (org_id, user_id)
        ).fetchone()
        if row is None:
            raise NotFound(f"user {user_id} not found")
        if row["role"] == Role.ADMIN and new_role != Role.ADMIN and _admins_left(conn, org_id, user_id) == 0:
            raise Conflict("cannot remove the last active admin of an organisation")
        conn.execute(
            "UPDATE memberships SET role = ? WHERE org_id = ? AND user_id = ?", (new_role.value, org_id, user_id)
        )
        audit.record(conn, ctx, RoleChanged(user_id, row["role"], new_role.value))
    return get_member(db, org_id, user_id)


def disable_user(db: Database, ctx: Context, org_id: int, user_id: int) -> Member:
    """Disable sign-in everywhere and end the user's sessions at once."""
    with db.write() as conn:
        row = conn.execute(
            "SELECT role FROM memberships WHERE org_id = ? AND user_id = ?", (org_id, user_id)
        ).fetchone()
        if row is None:
            raise NotFound(f"user {user_id} not found")
        if row["role"] == Role.ADMIN and _admins_left(conn, org_id, user_id) == 0:
            raise Conflict("cannot disable the last active admin of an organisation")
        conn.execute("UPDATE users SET disabled = 1 WHERE id = ?", (user_id,))
        ended = conn.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,)).rowcount
        audit.record(conn, ctx, UserDisabled(user_id, ended))
    return get_member(db, org_id, user_id)


def change_password(
    db: Database, passwords: Passwords, ctx: Context, user_id: int, new_password: str, keep_session: str | None = None
) -> None:
    """Set a new password and end every other session of the user."""
    with db.read() as conn:
        row = conn.execute("SELECT email FROM users WHERE id = ?", (user_id,)).fetchone()
    if row is None:
        raise NotFound(f"user {user_id} not found")
    passwords.check_policy(new_password, row["email"])
    password_hash = passwords.hash(new_password)
    with db.write() as conn:
        conn.execute(
            "UPDATE users SET password_hash = ?, password_changed_at = ? WHERE id = ?",
            (password_hash, now_iso(), user_id),
        )
        ended = conn.execute(
            "DELETE FROM sessions WHERE user_id = ? AND id IS NOT ?", (user_id, keep_session)
        ).rowcount
        audit.record(conn, ctx, PasswordChanged(user_id, ended))


def check_password(db: Database, passwords: Passwords, user_id: int, password: str) -> None:
    with db.read() as conn:
        row = conn.execute("SELECT password_hash FROM users WHERE id = ?", (user_id,)).fetchone()
    if row is None or not passwords.verify(row["password_hash"], password):
        raise InvalidCredentials("the current password is wrong")


@dataclass(frozen=True)
class Authenticated:
    user_id: int
    email: str
    org_id: int
    role: Role


def authenticate(
    db: Database, passwords: Passwords, ctx: Context, email: str, password: str, org_slug: str | None = None,
    code: str | None = None,
) -> Authenticated:  # fmt: skip
    """Check email and password (and, for a person with two-step verification on, the code from their app) and pick
    the organisation. Every outcome is audited; the error never says whether the email exists. MfaRequired (after a
    right password only) asks for the code."""
    email = email.strip().lower()
    with db.read() as conn:
        user = conn.execute("SELECT id, password_hash, disabled FROM users WHERE email = ?", (email,)).fetchone()
        memberships = (
            conn.execute(
                "SELECT o.id, o.slug, m.role FROM memberships m JOIN orgs o ON o.id = m.org_id "
                "WHERE m.user_id = ? ORDER BY o.slug",
                (user["id"],),
            ).fetchall()
            if user
            else []
        )

    def refuse(reason: str, org_id: int | None = None) -> InvalidCredentials:
        audit.record_alone(db, Context(ctx.actor, org_id, ctx.client_addr), LoginFailed(email, reason), "failure")
        return InvalidCredentials("wrong email or password")

    ok = passwords.verify(user["password_hash"] if user else None, password)
    home = memberships[0]["id"] if len(memberships) == 1 else None
    if user is None:
        raise refuse("unknown email")
    if not ok:
        raise refuse("wrong password", home)
    if user["disabled"]:
        raise refuse("user disabled", home)
    if org_slug:
        chosen = [m for m in memberships if m["slug"] == org_slug]
    else:
        chosen = memberships if len(memberships) == 1 else []
    if not chosen:
        if not org_slug and len(memberships) > 1:
            raise refuse("organisation not chosen")
        raise refuse("not a member of the organisation", home)
    membership = chosen[0]
    if mfa.is_enabled(db, user["id"]):
        if not code or not code.strip():
            audit.record_alone(db, Context(ctx.actor, membership["id"], ctx.client_addr),
                               LoginFailed(email, "second step needed"), "failure")  # fmt: skip
            raise MfaRequired("enter the code from your authenticator app")
        try:
            mfa.check(db, Context(f"user:{user['id']}", membership["id"], ctx.client_addr), user["id"], code)
        except WrongMfaCode:
            audit.record_alone(db, Context(ctx.actor, membership["id"], ctx.client_addr),
                               LoginFailed(email, "wrong second-step code"), "failure")  # fmt: skip
            raise
    with db.write() as conn:
        if passwords.needs_rehash(user["password_hash"]):
            conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (passwords.hash(password), user["id"]))
        conn.execute("UPDATE users SET last_login_at = ? WHERE id = ?", (now_iso(), user["id"]))
        audit.record(
            conn, Context(f"user:{user['id']}", membership["id"], ctx.client_addr), LoginSucceeded(user["id"], email)
        )
    return Authenticated(user["id"], email, membership["id"], Role(membership["role"]))
