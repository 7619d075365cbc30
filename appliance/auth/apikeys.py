"""Scoped API keys for integrations. Shown once at creation; only a SHA-256 of the secret is stored (the secret
is 256 random bits, so a slow hash adds nothing). The key's prefix finds the row; the comparison of hashes is
constant-time."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from appliance import audit
from appliance.audit.events import ApiKeyCreated, ApiKeyRejected, ApiKeyRevoked, Context
from appliance.auth.principal import Principal
from appliance.auth.roles import Permission, parse_permissions
from appliance.errors import InvalidValue, NotAuthenticated, NotFound, PermissionDenied
from appliance.store import Database, now_iso, parse_iso

TOKEN_PREFIX = "apl"
LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True)
class ApiKey:
    id: int
    org_id: int
    name: str
    prefix: str
    scopes: list[str]
    created_by: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    token: str  # shown once


def _key(row: Any) -> ApiKey:
    return ApiKey(
        row["id"], row["org_id"], row["name"], row["prefix"], json.loads(row["scopes"]), row["created_by"],
        row["created_at"], row["last_used_at"], row["revoked_at"],
    )  # fmt: skip


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_key(
    db: Database, ctx: Context, org_id: int, name: str, scopes: list[str], granter: frozenset[Permission] | None
) -> CreatedKey:
    """granter: the creator's permissions (a key never holds more than whoever made it); None for the CLI."""
    if not name.strip() or len(name) > 100:
        raise InvalidValue("API key name must be 1-100 characters")
    wanted = parse_permissions(scopes)
    if not wanted:
        raise InvalidValue("an API key needs at least one scope")
    if granter is not None and not wanted <= granter:
        extra = ", ".join(sorted(wanted - granter))
        raise PermissionDenied(f"cannot grant scopes you do not hold: {extra}")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    with db.write() as conn:
        cur = conn.execute(
            "INSERT INTO api_keys (org_id, name, prefix, secret_hash, scopes, created_by, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (org_id, name.strip(), prefix, _digest(secret), json.dumps(sorted(wanted)), ctx.actor, now_iso()),
        )
        key_id = int(cur.lastrowid or 0)
        audit.record(conn, ctx, ApiKeyCreated(key_id, name.strip(), sorted(wanted)))
    return CreatedKey(get_key(db, org_id, key_id), f"{TOKEN_PREFIX}_{prefix}_{secret}")


def get_key(db: Database, org_id: int, key_id: int) -> ApiKey:
    with db.read() as conn:
        row = conn.execute("SELECT * FROM api_keys WHERE org_id = ? AND id = ?", (org_id, key_id)).fetchone()
    if row is None:
        raise NotFound(f"API key {key_id} not found")
    return _key(row)


def list_keys(db: Database, org_id: int) -> list[ApiKey]:
    with db.read() as conn:
        return [_key(r) for r in conn.execute("SELECT * FROM api_keys WHERE org_id = ? ORDER BY id", (org_id,))]


def revoke_key(db: Database, ctx: Context, org_id: int, key_id: int) -> ApiKey:
    with db.write() as conn:
        row = conn.execute("SELECT revoked_at FROM api_keys WHERE org_id = ? AND id = ?", (org_id, key_id)).fetchone()
        if row is None:
            raise NotFound(f"API key {key_id} not found")
        if row["revoked_at"] is None:
            conn.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ?", (now_iso(), key_id))
            audit.record(conn, ctx, ApiKeyRevoked(key_id))
    return get_key(db, org_id, key_id)


def resolve_key(db: Database, token: str, client: str | None) -> Principal:
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        raise NotAuthenticated("malformed API key")
    _, prefix, secret = parts
    with db.read() as conn:
        row = conn.execute("SELECT * FROM api_keys WHERE prefix = ?", (prefix,)).fetchone()
    reason = None
    if row is None:
        reason = "unknown key"
    elif not hmac.compare_digest(row["secret_hash"], _digest(secret)):
        reason = "wrong secret"
    elif row["revoked_at"] is not None:
        reason = "revoked"
    if reason is not None:
        org_id = row["org_id"] if row is not None else None
        audit.record_alone(db, Context("anonymous", org_id, client), ApiKeyRejected(prefix[:12], reason), "failure")
        raise NotAuthenticated("invalid or revoked API key")
    assert row is not None
    now = datetime.now(UTC)
    if row["last_used_at"] is None or now - parse_iso(row["last_used_at"]) >= LAST_USED_RESOLUTION:
        with db.write() as conn:
            conn.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (now_iso(), row["id"]))
    return Principal(
        kind="apikey", id=row["id"], org_id=row["org_id"], permissions=parse_permissions(json.loads(row["scopes"]))
    )
