"""The hash chain. One chain per organisation (chain 0 for events with no organisation), so one organisation's
export verifies on its own. Each event's hash is SHA-256 over the canonical JSON of all its fields, its id and the
previous event's hash included: a changed byte, a deleted event or a swapped pair each break it. `audit_heads`
keeps each chain's last hash, so deleting the newest events shows too."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from appliance.audit.events import AuditEvent, Context
from appliance.store import Connection, Database, now_iso

GENESIS = "0" * 64
HASHED_FIELDS = (
    "id", "chain", "chain_seq", "ts", "org_id", "actor", "action", "target", "outcome", "client_addr", "details",
    "prev_hash",
)  # fmt: skip
COLUMNS = HASHED_FIELDS + ("hash",)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(event: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json({k: event[k] for k in HASHED_FIELDS}).encode("utf-8")).hexdigest()


def record(conn: Connection, ctx: Context, event: AuditEvent, outcome: str = "success") -> int:
    """Append one event. Call it inside the write transaction of the change it records, so both land or neither."""
    if not conn.in_transaction:
        raise RuntimeError("audit.record must run inside a write transaction")
    chain = ctx.org_id or 0
    head = conn.execute("SELECT chain_seq, hash FROM audit_heads WHERE chain = ?", (chain,)).fetchone()
    seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS)
    next_id = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM audit_events").fetchone()[0]
    row: dict[str, Any] = {
        "id": next_id,
        "chain": chain,
        "chain_seq": seq,
        "ts": now_iso(),
        "org_id": ctx.org_id,
        "actor": ctx.actor,
        "action": event.name,
        "target": event.target,
        "outcome": outcome,
        "client_addr": ctx.client_addr,
        "details": canonical_json(event.details()),
        "prev_hash": prev,
    }
    row["hash"] = event_hash(row)
    conn.execute(
        f"INSERT INTO audit_events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
        [row[c] for c in COLUMNS],
    )
    conn.execute(
        "INSERT INTO audit_heads (chain, chain_seq, hash) VALUES (?, ?, ?) "
        "ON CONFLICT(chain) DO UPDATE SET chain_seq = excluded.chain_seq, hash = excluded.hash",
        (chain, seq, row["hash"]),
    )
    return int(next_id)


def record_alone(db: Database, ctx: Context, event: AuditEvent, outcome: str = "success") -> int:
    """Record an event that accompanies no other change (a denial, a failed login, a read)."""
    with db.write() as conn:
        return record(conn, ctx, event, outcome)


@dataclass(frozen=True)
class Break:
    event_id: int | None
    chain: int
    reason: str

    def __str__(self) -> str:
        where = f"event {self.event_id}" if self.event_id is not None else f"end of chain {self.chain}"
        return f"{where} (chain {self.chain}): {self.reason}"


@dataclass
class ChainWalker:
    """Checks events fed in id order; the first failure is kept. Used on the database and on exports."""

    anchors: dict[int, tuple[int, str]]  # chain -> (seq expected next, prev hash expected)
    first_break: Break | None = None
    checked: int = 0

    def feed(self, event: dict[str, Any]) -> None:
        self.checked += 1
        if self.first_break is not None:
            return
        chain = event["chain"]
        expected_seq, expected_prev = self.anchors.get(chain, (1, GENESIS))
        if event_hash(event) != event["hash"]:
            self.first_break = Break(event["id"], chain, "contents do not match the stored hash (altered)")
        elif event["chain_seq"] != expected_seq:
            self.first_break = Break(
                event["id"], chain, f"sequence {event['chain_seq']} where {expected_seq} was expected (events missing)"
            )
        elif event["prev_hash"] != expected_prev:
            self.first_break = Break(
                event["id"], chain, "does not link to the event before it (deleted, inserted or reordered)"
            )
        else:
            self.anchors[chain] = (expected_seq + 1, event["hash"])


def iter_events(conn: Connection, where: str = "", params: Iterable[Any] = ()) -> Iterator[dict[str, Any]]:
    cursor = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM audit_events {where} ORDER BY id", tuple(params))
    for row in cursor:
        yield dict(zip(COLUMNS, row, strict=True))


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    events: int
    first_break: Break | None


def verify(
    db: Database, progress: Callable[[int], None] | None = None, chain: int | None = None
) -> VerifyResult:
    """Walk every event (or one chain's) and name the first one that breaks the chain."""
    walker = ChainWalker(anchors={})
    where, params = ("WHERE chain = ?", (chain,)) if chain is not None else ("", ())
    with db.read() as conn:
        conn.execute("BEGIN")  # one snapshot: events appended meanwhile must not look like a broken head
        total = 0
        for event in iter_events(conn, where, params):
            walker.feed(event)
            total += 1
            if progress is not None:
                progress(1)
        heads = {
            row[0]: (row[1], row[2])
            for row in conn.execute(f"SELECT chain, chain_seq, hash FROM audit_heads {where}", params)
        }
        conn.execute("COMMIT")
    if walker.first_break is None:
        for chain in sorted(set(heads) | set(walker.anchors)):
            seen = walker.anchors.get(chain)
            head = heads.get(chain)
            if head is None or seen is None or (seen[0] - 1, seen[1]) != head:
                walker.first_break = Break(None, chain, "the newest events of this chain are missing")
                break
    return VerifyResult(walker.first_break is None, total, walker.first_break)


def search(
    db: Database,
    chain: int,
    since: str | None = None,
    until: str | None = None,
    action: str | None = None,
    limit: int = 100,
    offset: int = 0,
    actor: str | None = None,
) -> list[dict[str, Any]]:
    """Events of one chain (one organisation), newest first."""
    clauses: list[str] = ["chain = ?"]
    params: list[Any] = [chain]
    for clause, value in (("ts >= ?", since), ("ts < ?", until), ("action = ?", action), ("actor = ?", actor)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    with db.read() as conn:
        cursor = conn.execute(
            f"SELECT {', '.join(COLUMNS)} FROM audit_events WHERE {' AND '.join(clauses)} "
            "ORDER BY id DESC LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        out = [dict(zip(COLUMNS, row, strict=True)) for row in cursor]
    for event in out:
        event["details"] = json.loads(event["details"])
    return out
