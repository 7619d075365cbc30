"""Organisations: several on one box (a hospital group with several clinics). Every customer-data row carries
its org_id and every query filters on it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from appliance import audit
from appliance.audit.events import Context, OrgCreated, OrgSettingsChanged
from appliance.errors import Conflict, InvalidValue, NotFound
from appliance.store import Database, now_iso, unique_violation

_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$")
# Organisation settings an admin may change through the API; later features add theirs here.
ORG_SETTING_KEYS = {"name", "timezone", "support_email", "answer_threshold", "emergency_terms", "emergency_article_id",
                    "answer_while_waiting"}  # fmt: skip
# Whole-number settings and their bounds (answer_threshold: the confidence below which answers are refused).
INTEGER_SETTINGS = {"answer_threshold": (0, 100)}
BOOLEAN_SETTINGS = {"answer_while_waiting"}  # strict: true or false, never "yes" or 1
# emergency_terms: the organisation's own phrases that make a message urgent, on top of the built-in list.
MAX_EMERGENCY_TERMS = 50
EMERGENCY_TERM_CHARS = (3, 80)


def _emergency_terms(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise InvalidValue("setting emergency_terms must be a list of phrases (strings)")
    terms = list(dict.fromkeys(" ".join(t.split()) for t in value if t.strip()))
    if len(terms) > MAX_EMERGENCY_TERMS:
        raise InvalidValue(f"setting emergency_terms holds at most {MAX_EMERGENCY_TERMS} phrases")
    low, high = EMERGENCY_TERM_CHARS
    for term in terms:
        if not low <= len(term) <= high or not any(ch.isalpha() for ch in term):
            raise InvalidValue(f"emergency_terms: {term[:40]!r} must be {low}-{high} characters with a letter")
    return terms


@dataclass(frozen=True)
class Org:
    id: int
    slug: str
    name: str
    settings: dict[str, Any]


def _org(row: Any) -> Org:
    return Org(row["id"], row["slug"], row["name"], json.loads(row["settings"]))


def create_org(db: Database, ctx: Context, slug: str, name: str) -> Org:
    if not _SLUG.match(slug):
        raise InvalidValue("org slug must be 1-48 lowercase letters, digits or inner hyphens")
    if not name.strip():
        raise InvalidValue("org name must not be empty")
    try:
        with db.write() as conn:
            cur = conn.execute(
                "INSERT INTO orgs (slug, name, created_at) VALUES (?, ?, ?)", (slug, name.strip(), now_iso())
            )
            org_id = int(cur.lastrowid or 0)
            audit.record(conn, Context(ctx.actor, org_id, ctx.client_addr), OrgCreated(org_id, slug))
    except Exception as exc:
        if unique_violation(exc):
            raise Conflict(f"an organisation with slug {slug!r} already exists") from None
        raise
    return get_org(db, org_id)


def get_org(db: Database, org_id: int) -> Org:
    with db.read() as conn:
        row = conn.execute("SELECT * FROM orgs WHERE id = ?", (org_id,)).fetchone()
    if row is None:
        raise NotFound(f"organisation {org_id} not found")
    return _org(row)


def get_org_by_slug(db: Database, slug: str) -> Org:
    with db.read() as conn:
        row = conn.execute("SELECT * FROM orgs WHERE slug = ?", (slug,)).fetchone()
    if row is None:
        raise NotFound(f"organisation {slug!r} not found")
    return _org(row)


def list_orgs(db: Database) -> list[Org]:
    with db.read() as conn:
        return [_org(r) for r in conn.execute("SELECT * FROM orgs ORDER BY slug")]


def update_org_settings(db: Database, ctx: Context, org_id: int, changes: dict[str, Any]) -> Org:
    unknown = set(changes) - ORG_SETTING_KEYS
    if unknown:
        raise InvalidValue(f"unknown organisation settings: {', '.join(sorted(unknown))}")
    changes = dict(changes)
    for key, value in changes.items():
        if key == "emergency_terms":
            changes[key] = _emergency_terms(value)
        elif key == "emergency_article_id":
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise InvalidValue("setting emergency_article_id must be an article id or null")
        elif key in BOOLEAN_SETTINGS:
            if not isinstance(value, bool):
                raise InvalidValue(f"setting {key} must be true or false")
        elif key in INTEGER_SETTINGS:
            low, high = INTEGER_SETTINGS[key]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InvalidValue(f"setting {key} must be a whole number from {low} to {high}")
        elif not isinstance(value, str) or len(value) > 200:
            raise InvalidValue(f"setting {key} must be a string of at most 200 characters")
    if "name" in changes and not changes["name"].strip():
        raise InvalidValue("org name must not be empty")
    with db.write() as conn:
        row = conn.execute("SELECT * FROM orgs WHERE id = ?", (org_id,)).fetchone()
        if row is None:
            raise NotFound(f"organisation {org_id} not found")
        wanted = changes.get("emergency_article_id")
        if wanted is not None and conn.execute("SELECT 1 FROM articles WHERE org_id = ? AND id = ?",
                                               (org_id, wanted)).fetchone() is None:  # fmt: skip
            raise InvalidValue(f"emergency_article_id: article {wanted} is not an article of this organisation")
        settings = json.loads(row["settings"])
        name = row["name"]
        for key, value in changes.items():
            if key == "name":
                name = value.strip()
            elif value is None:  # emergency_article_id: null clears it
                settings.pop(key, None)
            else:
                settings[key] = value
        conn.execute("UPDATE orgs SET name = ?, settings = ? WHERE id = ?", (name, json.dumps(settings), org_id))
        audit.record(conn, ctx, OrgSettingsChanged(org_id, dict(changes)))
    return get_org(db, org_id)
