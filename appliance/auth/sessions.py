"""Console sessions. The cookie holds a random token; the database keeps only its SHA-256, so a stolen database
copy signs nobody in. A session ends after an idle period or a maximum age, whichever comes first."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from appliance import audit
from appliance.audit.events import Context, LoggedOut
from appliance.auth.principal import Principal
from appliance.auth.roles import ROLE_PERMISSIONS, Role
from appliance.errors import NotAuthenticated, SessionExpired
from appliance.store import Database, now_iso, parse_iso

# last_seen_at is written at most this often per session, so a busy console does not write on every request.
TOUCH_INTERVAL = timedelta(seconds=30)


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta
    max_age: timedelta
    mfa_roles: frozenset[str] = frozenset()  # roles that must have two-step verification on to do anything


@dataclass(frozen=True)
class NewSession:
    token: str
    csrf_token: str
    expires_at: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def create_session(db: Database, policy: SessionPolicy, user_id: int, org_id: int, client: str | None) -> NewSession:
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    expires = _iso(now + policy.max_age)
    with db.write() as conn:
        conn.execute(
            "INSERT INTO sessions (id, user_id, org_id, csrf_token, created_at, last_seen_at, expires_at, client_addr)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (_digest(token), user_id, org_id, csrf, _iso(now), _iso(now), expires, client),
        )
    return NewSession(token, csrf, expires)


def resolve_session(db: Database, policy: SessionPolicy, token: str) -> Principal:
    session_id = _digest(token)
    with db.read() as conn:
        row = conn.execute(
            "SELECT s.*, u.email, u.disabled, m.role, f.enabled_at AS mfa_on FROM sessions s "
            "JOIN users u ON u.id = s.user_id "
            "LEFT JOIN user_mfa f ON f.user_id = s.user_id "
            "LEFT JOIN memberships m ON m.user_id = s.user_id AND m.org_id = s.org_id "
            "WHERE s.id = ?",
            (session_id,),
        ).fetchone()
    if row is None:
        raise NotAuthenticated("not signed in")
    now = datetime.now(UTC)
    last_seen = parse_iso(row["last_seen_at"])
    if row["disabled"] or row["role"] is None:
        _delete(db, session_id)
        raise NotAuthenticated("not signed in")
    if now >= parse_iso(row["expires_at"]) or now - last_seen >= policy.idle:
        _delete(db, session_id)
        raise SessionExpired("your session has expired; sign in again")
    if now - last_seen >= TOUCH_INTERVAL:
        with db.write() as conn:
            conn.execute("UPDATE sessions SET last_seen_at = ? WHERE id = ?", (_iso(now), session_id))
    role = Role(row["role"])
    # A role that must use two-step verification, signed in without it: no permission at all until it is set up.
    mfa_missing = role.value in policy.mfa_roles and row["mfa_on"] is None
    return Principal(
        kind="user", id=row["user_id"], org_id=row["org_id"],
        permissions=frozenset() if mfa_missing else ROLE_PERMISSIONS[role], role=role.value,
        email=row["email"], session_id=session_id, csrf_token=row["csrf_token"], mfa_missing=mfa_missing,
    )  # fmt: skip


def _delete(db: Database, session_id: str) -> None:
    with db.write() as conn:
        conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))


def end_session(db: Database, ctx: Context, principal: Principal, everywhere: bool = False) -> int:
    with db.write() as conn:
        if everywhere:
            ended = conn.execute("DELETE FROM sessions WHERE user_id = ?", (principal.id,)).rowcount
        else:
            ended = conn.execute("DELETE FROM sessions WHERE id = ?", (principal.session_id,)).rowcount
        audit.record(conn, ctx, LoggedOut(principal.id, ended))
    return int(ended)


def purge_expired_sessions(db: Database, policy: SessionPolicy) -> int:
    idle_cutoff = _iso(datetime.now(UTC) - policy.idle)
    with db.write() as conn:
        return int(
            conn.execute(
                "DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at <= ?", (now_iso(), idle_cutoff)
            ).rowcount
        )
