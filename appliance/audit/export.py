"""Signed audit exports: events.jsonl, manifest.json (counts, chain anchors, SHA-256 of every file) and
manifest.sig (Ed25519 over the manifest bytes). `verify_export` needs nothing but the folder and the public key."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance.audit.chain import Break, ChainWalker, canonical_json, iter_events
from appliance.crypto.signing import load_public_key, public_pem, verify_signature
from appliance.errors import BadInput, Conflict
from appliance.store import Database, now_iso

FORMAT = "appliance-audit-export/1"
EVENTS_FILE = "events.jsonl"
MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.sig"
PUBLIC_KEY_FILE = "signing-key.pub"


def normalise_bound(value: str | None, name: str) -> str | None:
    """Accept a date or an ISO datetime; return the stored timestamp format for comparison."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"--{name} {value!r} is not a date or ISO date-time") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class ExportResult:
    directory: Path
    events: int
    manifest_sha256: str


def export(
    db: Database,
    signing_key: Ed25519PrivateKey,
    out: Path,
    since: str | None = None,
    until: str | None = None,
    org_ids: list[int] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ExportResult:
    lo, hi = normalise_bound(since, "since"), normalise_bound(until, "until")
    if out.exists() and any(out.iterdir()):
        raise Conflict(f"export folder {out} is not empty")
    clauses: list[str] = []
    params: list[Any] = []
    if lo is not None:
        clauses.append("ts >= ?")
        params.append(lo)
    if hi is not None:
        clauses.append("ts < ?")
        params.append(hi)
    if org_ids is not None:
        clauses.append(f"chain IN ({', '.join('?' * len(org_ids))})")
        params.extend(org_ids)
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""

    out.mkdir(parents=True, exist_ok=True)
    events_path = out / EVENTS_FILE
    chains: dict[int, dict[str, Any]] = {}
    digest = hashlib.sha256()
    count = 0
    with db.read() as conn, events_path.open("w", encoding="utf-8") as fh:
        conn.execute("BEGIN")
        for event in iter_events(conn, where, params):
            line = canonical_json(event) + "\n"
            fh.write(line)
            digest.update(line.encode("utf-8"))
            count += 1
            info = chains.setdefault(
                event["chain"], {"first_seq": event["chain_seq"], "prev_hash": event["prev_hash"], "count": 0}
            )
            info["count"] += 1
            info["last_seq"] = event["chain_seq"]
            info["last_hash"] = event["hash"]
            if progress is not None:
                progress(1)
        conn.execute("COMMIT")
        fh.flush()
        os.fsync(fh.fileno())

    public = signing_key.public_key()
    pub_bytes = public_pem(public)
    (out / PUBLIC_KEY_FILE).write_bytes(pub_bytes)
    manifest = {
        "format": FORMAT,
        "created_at": now_iso(),
        "since": lo,
        "until": hi,
        "orgs": org_ids,
        "events": count,
        "chains": {str(k): v for k, v in sorted(chains.items())},
        "files": {EVENTS_FILE: digest.hexdigest()},
        "public_key_sha256": hashlib.sha256(pub_bytes).hexdigest(),
    }
    manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8") + b"\n"
    (out / MANIFEST_FILE).write_bytes(manifest_bytes)
    (out / SIGNATURE_FILE).write_bytes(base64.b64encode(signing_key.sign(manifest_bytes)) + b"\n")
    return ExportResult(out, count, hashlib.sha256(manifest_bytes).hexdigest())


@dataclass(frozen=True)
class ExportCheck:
    ok: bool
    events: int
    problem: str | None
    signer_from_export: bool  # True when no public key was given: integrity proven, origin not


def verify_export(
    directory: Path, public_key: Ed25519PublicKey | None = None, progress: Callable[[int], None] | None = None
) -> ExportCheck:
    signer_from_export = public_key is None

    def fail(problem: str, events: int = 0) -> ExportCheck:
        return ExportCheck(False, events, problem, signer_from_export)

    for name in (EVENTS_FILE, MANIFEST_FILE, SIGNATURE_FILE):
        if not (directory / name).is_file():
            raise BadInput(f"{directory}: not an audit export ({name} is missing)")
    manifest_bytes = (directory / MANIFEST_FILE).read_bytes()
    if public_key is None:
        key_path = directory / PUBLIC_KEY_FILE
        if not key_path.is_file():
            raise BadInput(f"{directory}: no public key given and none in the export")
        public_key = load_public_key(key_path.read_bytes(), str(key_path))
    try:
        signature = base64.b64decode((directory / SIGNATURE_FILE).read_bytes().strip(), validate=True)
    except ValueError:
        return fail("manifest.sig is not a base64 signature")
    if not verify_signature(public_key, signature, manifest_bytes):
        return fail("the manifest signature does not verify with this public key")
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError:
        return fail("manifest.json is not JSON")
    if manifest.get("format") != FORMAT:
        return fail(f"unknown export format {manifest.get('format')!r}")

    digest = hashlib.sha256()
    anchors = {int(k): (v["first_seq"], v["prev_hash"]) for k, v in manifest["chains"].items()}
    walker = ChainWalker(anchors=dict(anchors))
    with (directory / EVENTS_FILE).open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            digest.update(raw)
            try:
                event = json.loads(raw)
            except ValueError:
                return fail(f"{EVENTS_FILE} line {number} is not JSON", walker.checked)
            if not isinstance(event, dict) or not isinstance(event.get("chain"), int):
                return fail(f"{EVENTS_FILE} line {number} is not an audit event", walker.checked)
            if event["chain"] not in anchors and walker.first_break is None:
                walker.first_break = Break(event.get("id"), event["chain"], "chain not listed in the manifest")
            try:
                walker.feed(event)
            except (KeyError, TypeError):
                return fail(f"{EVENTS_FILE} line {number} lacks audit fields", walker.checked)
            if progress is not None:
                progress(1)
    if digest.hexdigest() != manifest["files"].get(EVENTS_FILE):
        return fail(f"{EVENTS_FILE} does not match the SHA-256 in the signed manifest", walker.checked)
    if walker.first_break is not None:
        return fail(str(walker.first_break), walker.checked)
    if walker.checked != manifest["events"]:
        return fail(f"{walker.checked} events found, the manifest lists {manifest['events']}", walker.checked)
    for chain, info in manifest["chains"].items():
        seq, last = walker.anchors[int(chain)]
        if (seq - 1, last) != (info["last_seq"], info["last_hash"]):
            return fail(f"chain {chain} ends before the last event the manifest lists", walker.checked)
    return ExportCheck(True, walker.checked, None, signer_from_export)
