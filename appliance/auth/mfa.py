"""Two-step verification: a time-based one-time code (TOTP, RFC 6238: HMAC-SHA1, 6 digits, 30-second steps) from an
authenticator app, asked after the password.

- Enrolment: `begin` gives a new secret (and its otpauth:// address, which apps read from a QR code); nothing is
  enforced until `enable` has seen a valid code from it, so a mistyped enrolment never locks anyone out. `enable`
  returns ten one-time recovery codes, shown once; only their SHA-256 is kept.
- Sign-in: `check` accepts the current code, one step either side (clock drift), but never a step at or before the
  last one accepted, so a code seen over a shoulder cannot be replayed; or an unused recovery code, which is then
  spent. After MAX_FAILURES wrong codes in a row, no code is accepted for LOCK_SECONDS (the password alone was
  right, so this stops guessing the remaining million).
- `disable` removes it (the person, with password and code; or an administrator's reset).

The secret is stored in the encrypted database, like the password hashes. pyotp computes the codes (RFC 6238 test
vectors in the tests); segno draws the QR code as SVG, locally.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

import pyotp

from appliance import audit
from appliance.audit.events import Context, MfaChanged
from appliance.errors import Conflict, InvalidCredentials, MfaLocked, NotFound, WrongMfaCode
from appliance.store import Connection, Database, now_iso

STEP_SECONDS = 30
DRIFT_STEPS = 1
RECOVERY_CODES = 10
MAX_FAILURES = 5
LOCK_SECONDS = 15 * 60
ISSUER = "Support appliance"


@dataclass(frozen=True)
class Enrolment:
    secret: str  # base32, for typing into an app by hand
    uri: str  # otpauth://totp/…, what the QR code holds
    qr_svg: str  # data: URI of the QR code (SVG)


def _hash(code: str) -> str:
    return hashlib.sha256(_normal(code).encode()).hexdigest()


def _normal(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def enabled(conn: Connection, user_id: int) -> bool:
    row = conn.execute("SELECT enabled_at FROM user_mfa WHERE user_id = ?", (user_id,)).fetchone()
    return row is not None and row["enabled_at"] is not None


def is_enabled(db: Database, user_id: int) -> bool:
    with db.read() as conn:
        return enabled(conn, user_id)


def begin(db: Database, ctx: Context, user_id: int, account: str) -> Enrolment:
    """A new secret for this person, replacing any unconfirmed one. Conflict when it is already enabled."""
    secret = pyotp.random_base32()
    with db.write() as conn:
        if enabled(conn, user_id):
            raise Conflict("two-step verification is already on; turn it off first to enrol a new device")
        conn.execute("INSERT INTO user_mfa (user_id, secret, created_at) VALUES (?, ?, ?) ON CONFLICT(user_id)"
                     " DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at, last_step = 0",
                     (user_id, secret, now_iso()))  # fmt: skip
        audit.record(conn, ctx, MfaChanged(user_id, "enrolling"))
    return _enrolment(secret, account)


def pending(db: Database, user_id: int, account: str) -> Enrolment | None:
    """The set-up begun and not yet confirmed, if any (to show its QR code again)."""
    with db.read() as conn:
        row = conn.execute("SELECT secret FROM user_mfa WHERE user_id = ? AND enabled_at IS NULL",
                           (user_id,)).fetchone()  # fmt: skip
    return None if row is None else _enrolment(row["secret"], account)


def _enrolment(secret: str, account: str) -> Enrolment:
    import segno

    uri = pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=ISSUER)
    svg = segno.make(uri, error="m").svg_inline(scale=4, dark="#000", light="#fff")
    return Enrolment(secret, uri, "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode())


def _step(secret: str, code: str, after: int, now: float) -> int | None:
    """The time step `code` belongs to (within the drift window, after `after`), or None."""
    code = _normal(code)
    if len(code) != 6 or not code.isdigit():
        return None
    totp, current = pyotp.TOTP(secret), int(now // STEP_SECONDS)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if step > after and hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def enable(db: Database, ctx: Context, user_id: int, code: str, now: float | None = None) -> list[str]:
    """Turn it on with a first code from the app; returns the recovery codes (shown once)."""
    codes = [f"{secrets.token_hex(3)}-{secrets.token_hex(3)}" for _ in range(RECOVERY_CODES)]
    with db.write() as conn:
        row = conn.execute("SELECT * FROM user_mfa WHERE user_id = ?", (user_id,)).fetchone()
        if row is None:
            raise NotFound("start the set-up first")
        if row["enabled_at"] is not None:
            raise Conflict("two-step verification is already on")
        step = _step(row["secret"], code, 0, time.time() if now is None else now)
        if step is None:
            raise WrongMfaCode("that code does not match; check the device's clock and try the next code")
        conn.execute("UPDATE user_mfa SET enabled_at = ?, last_step = ?, recovery = ? WHERE user_id = ?",
                     (now_iso(), step, json.dumps([_hash(c) for c in codes]), user_id))  # fmt: skip
        audit.record(conn, ctx, MfaChanged(user_id, "enabled"))
    return codes


def check(db: Database, ctx: Context, user_id: int, code: str, now: float | None = None) -> None:
    """Accept a code (or a recovery code, spent) for a person who has it on; InvalidCredentials otherwise."""
    now = time.time() if now is None else now
    with db.write() as conn:
        row = conn.execute("SELECT * FROM user_mfa WHERE user_id = ? AND enabled_at IS NOT NULL",
                           (user_id,)).fetchone()  # fmt: skip
        if row is None:
            raise InvalidCredentials("two-step verification is not on")
        if row["locked_until"] > now:
            raise MfaLocked("too many wrong codes; try again in a few minutes")
        step = _step(row["secret"], code, int(row["last_step"]), now)
        unused = json.loads(row["recovery"])
        if step is not None:
            conn.execute("UPDATE user_mfa SET last_step = ?, failures = 0 WHERE user_id = ?", (step, user_id))
            return
        if _hash(code) in unused:
            unused.remove(_hash(code))
            conn.execute("UPDATE user_mfa SET recovery = ?, failures = 0 WHERE user_id = ?",
                         (json.dumps(unused), user_id))  # fmt: skip
            audit.record(conn, ctx, MfaChanged(user_id, "recovery_code_used"))
            return
        failures = int(row["failures"]) + 1
        locked = now + LOCK_SECONDS if failures >= MAX_FAILURES else 0.0
        conn.execute("UPDATE user_mfa SET failures = ?, locked_until = ? WHERE user_id = ?",
                     (0 if locked else failures, locked, user_id))  # fmt: skip
    raise WrongMfaCode("wrong code")


def recovery_left(db: Database, user_id: int) -> int:
    with db.read() as conn:
        row = conn.execute("SELECT recovery FROM user_mfa WHERE user_id = ?", (user_id,)).fetchone()
    return len(json.loads(row["recovery"])) if row is not None else 0


def disable(db: Database, ctx: Context, user_id: int, reset: bool = False) -> bool:
    """Remove it (`reset`: by an administrator). False when there was nothing to remove."""
    with db.write() as conn:
        gone = conn.execute("DELETE FROM user_mfa WHERE user_id = ?", (user_id,)).rowcount > 0
        if gone:
            audit.record(conn, ctx, MfaChanged(user_id, "reset" if reset else "disabled"))
    return gone
