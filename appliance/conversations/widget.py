"""Who is writing from the widget: widget keys, visitor sessions and signed customer identities.

- A **widget key** (`wk_…`) is public: the intranet page names it in the script tag. It says which organisation
  the widget talks to, and carries the widget's theme. Each key has an **identity secret** (`wid_…`) that only the
  intranet's server knows.
- A **visitor session** is issued by the appliance to a widget (POST /api/widget/session): the organisation, a
  random visitor id, the customer when an identity was given, the key, and an expiry, signed with a key derived
  from the database key. The widget keeps it in memory or sessionStorage.
- A **signed identity** lets an intranet that knows its user attach the conversation to the right customer:
  `signature = hex(HMAC-SHA256(identity_secret, f"{user_id}\\n{email}\\n{timestamp}"))`, checked with a bounded
  age. A forged or expired signature, and a tampered session, are refused (401) and audited.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from appliance import audit
from appliance.audit.events import Context, SignatureRejected, WidgetKeyChanged
from appliance.conversations import customers
from appliance.errors import InvalidValue, NotAuthenticated, NotFound
from appliance.store import Database, now_iso

SESSION_KEY_PURPOSE = "widget-visitor-session"
THEME_FIELDS = {
    "primary_color": re.compile(r"#[0-9a-fA-F]{6}"),
    "text_color": re.compile(r"#[0-9a-fA-F]{6}"),
    "position": re.compile(r"bottom-right|bottom-left"),
}
THEME_TEXT_FIELDS = {"greeting": 300, "launcher_text": 40, "title": 80, "logo_url": 500}


@dataclass(frozen=True)
class WidgetKey:
    id: int
    org_id: int
    public_key: str
    theme: dict[str, str]
    revoked: bool
    created_at: str


@dataclass(frozen=True)
class Visitor:
    """A verified visitor session."""

    org_id: int
    visitor_id: str
    customer_id: int | None
    key_id: int
    expires: int

    @property
    def sender(self) -> str:
        return f"visitor:{self.visitor_id}"

    def context(self, client_addr: str | None) -> Context:
        return Context(self.sender, self.org_id, client_addr)


def _key(row: Any) -> WidgetKey:
    return WidgetKey(int(row["id"]), int(row["org_id"]), row["public_key"], json.loads(row["theme"]),
                     bool(row["revoked"]), row["created_at"])  # fmt: skip


def check_theme(theme: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in theme.items():
        if not isinstance(value, str):
            raise InvalidValue(f"theme.{name} must be a string")
        if name in THEME_FIELDS:
            if not THEME_FIELDS[name].fullmatch(value):
                raise InvalidValue(f"theme.{name}: {value!r} is not valid")
        elif name in THEME_TEXT_FIELDS:
            if len(value) > THEME_TEXT_FIELDS[name]:
                raise InvalidValue(f"theme.{name} is longer than {THEME_TEXT_FIELDS[name]} characters")
            if name == "logo_url" and value and not (value.startswith("/") or value.startswith("https://")):
                raise InvalidValue("theme.logo_url must be a path on this server or an https URL")
        else:
            raise InvalidValue(f"unknown theme field {name!r}; fields: "
                               f"{', '.join(sorted([*THEME_FIELDS, *THEME_TEXT_FIELDS]))}")  # fmt: skip
        out[name] = value
    return out


def create_key(db: Database, ctx: Context, org_id: int, theme: dict[str, Any] | None = None) -> tuple[WidgetKey, str]:
    """A new widget key; returns it with its identity secret (shown once)."""
    checked = check_theme(theme or {})
    public_key, secret = "wk_" + secrets.token_urlsafe(18), "wid_" + secrets.token_urlsafe(32)
    with db.write() as conn:
        key_id = conn.execute(
            "INSERT INTO widget_keys (org_id, public_key, identity_secret, theme, created_by, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)", (org_id, public_key, secret, json.dumps(checked), ctx.actor, now_iso()),
        ).lastrowid  # fmt: skip
        assert key_id is not None
        audit.record(conn, ctx, WidgetKeyChanged(int(key_id), "created"))
        row = conn.execute("SELECT * FROM widget_keys WHERE id = ?", (key_id,)).fetchone()
    return _key(row), secret


def list_keys(db: Database, org_id: int) -> list[WidgetKey]:
    with db.read() as conn:
        return [_key(r) for r in conn.execute("SELECT * FROM widget_keys WHERE org_id = ? ORDER BY id", (org_id,))]


def _own_key(conn: Any, org_id: int, key_id: int) -> Any:
    row = conn.execute("SELECT * FROM widget_keys WHERE id = ? AND org_id = ?", (key_id, org_id)).fetchone()
    if row is None:
        raise NotFound(f"widget key {key_id} not found")
    return row


def set_theme(db: Database, ctx: Context, org_id: int, key_id: int, theme: dict[str, Any]) -> WidgetKey:
    checked = check_theme(theme)
    with db.write() as conn:
        _own_key(conn, org_id, key_id)
        conn.execute("UPDATE widget_keys SET theme = ? WHERE id = ?", (json.dumps(checked), key_id))
        audit.record(conn, ctx, WidgetKeyChanged(key_id, "theme"))
        return _key(_own_key(conn, org_id, key_id))


def rotate_secret(db: Database, ctx: Context, org_id: int, key_id: int) -> str:
    secret = "wid_" + secrets.token_urlsafe(32)
    with db.write() as conn:
        _own_key(conn, org_id, key_id)
        conn.execute("UPDATE widget_keys SET identity_secret = ? WHERE id = ?", (secret, key_id))
        audit.record(conn, ctx, WidgetKeyChanged(key_id, "secret_rotated"))
    return secret


def revoke_key(db: Database, ctx: Context, org_id: int, key_id: int) -> None:
    """A revoked key opens no new sessions, and the sessions it issued stop working."""
    with db.write() as conn:
        _own_key(conn, org_id, key_id)
        conn.execute("UPDATE widget_keys SET revoked = 1 WHERE id = ?", (key_id,))
        audit.record(conn, ctx, WidgetKeyChanged(key_id, "revoked"))


def identity_signature(secret: str, user_id: str, email: str, timestamp: int) -> str:
    """What an intranet's server computes to vouch for its signed-in user."""
    message = f"{user_id}\n{email}\n{timestamp}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Identity:
    user_id: str
    email: str
    timestamp: int
    signature: str
    name: str = ""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    """Issues and verifies visitor sessions for one installation."""

    def __init__(self, db: Database, signing_key: bytes, session_hours: int, identity_max_age_s: int) -> None:
        self.db = db
        self._signing_key = signing_key
        self.session_s = session_hours * 3600
        self.identity_max_age_s = identity_max_age_s

    def _reject(self, ctx: Context, kind: str, reason: str, message: str) -> NotAuthenticated:
        audit.record_alone(self.db, ctx, SignatureRejected(kind, reason), "denied")
        return NotAuthenticated(message)

    def start(self, ctx: Context, public_key: str, identity: Identity | None = None,
              now: float | None = None) -> tuple[str, Visitor, WidgetKey]:  # fmt: skip
        """A new visitor session for a widget key, attached to a customer when a valid identity comes with it."""
        now = time.time() if now is None else now
        with self.db.read() as conn:
            row = conn.execute("SELECT * FROM widget_keys WHERE public_key = ?", (public_key,)).fetchone()
        if row is None or row["revoked"]:
            raise self._reject(ctx, "widget_key", "unknown or revoked key", "unknown widget key")
        key = _key(row)
        ctx = Context(ctx.actor, key.org_id, ctx.client_addr)
        customer_id = None
        if identity is not None:
            expected = identity_signature(row["identity_secret"], identity.user_id, identity.email, identity.timestamp)
            if not hmac.compare_digest(expected, identity.signature.lower()):
                raise self._reject(ctx, "identity", "signature mismatch", "the identity signature does not verify")
            if abs(now - identity.timestamp) > self.identity_max_age_s:
                raise self._reject(ctx, "identity", "expired", "the signed identity has expired; sign it again")
            customer_id = customers.upsert_identified(self.db, key.org_id, identity.user_id, identity.email,
                                                      identity.name)  # fmt: skip
        visitor = Visitor(key.org_id, secrets.token_urlsafe(12), customer_id, key.id, int(now) + self.session_s)
        payload = _b64(json.dumps({"o": visitor.org_id, "v": visitor.visitor_id, "c": visitor.customer_id,
                                   "k": visitor.key_id, "e": visitor.expires}, separators=(",", ":")).encode())  # fmt: skip
        return f"{payload}.{self._mac(payload)}", visitor, key

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._signing_key, payload.encode(), hashlib.sha256).digest())

    def verify(self, ctx: Context, token: str, now: float | None = None) -> Visitor:
        now = time.time() if now is None else now
        payload, _, mac = token.partition(".")
        if not payload or not mac or not hmac.compare_digest(mac, self._mac(payload)):
            raise self._reject(ctx, "visitor_session", "signature mismatch", "the visitor session is not valid")
        try:
            data = json.loads(_unb64(payload))
            visitor = Visitor(int(data["o"]), str(data["v"]), None if data["c"] is None else int(data["c"]),
                              int(data["k"]), int(data["e"]))  # fmt: skip
        except (ValueError, KeyError, TypeError):
            raise self._reject(ctx, "visitor_session", "malformed", "the visitor session is not valid") from None
        if visitor.expires < now:
            raise NotAuthenticated("the visitor session has expired; start a new one")
        with self.db.read() as conn:
            row = conn.execute("SELECT revoked FROM widget_keys WHERE id = ?", (visitor.key_id,)).fetchone()
        if row is None or row["revoked"]:
            raise NotAuthenticated("the widget key of this session was revoked")
        return visitor
