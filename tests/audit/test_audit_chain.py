"""The verifier catches a changed byte in any field, a deleted event, a swapped pair, and a truncated chain."""

from __future__ import annotations

import json
from typing import Any

import pytest

from appliance import audit
from appliance.audit.chain import COLUMNS
from appliance.instance import Instance
from appliance.store import Connection
from tests.conftest import Seed, client_for


def _unlock(conn: Connection) -> None:
    """Play an attacker who holds the key: drop the append-only triggers."""
    conn.execute("DROP TRIGGER audit_events_append_only_update")
    conn.execute("DROP TRIGGER audit_events_append_only_delete")


def _events(inst: Instance) -> list[dict[str, Any]]:
    with inst.db.read() as conn:
        return [dict(zip(COLUMNS, r, strict=True)) for r in conn.execute(f"SELECT {', '.join(COLUMNS)} FROM audit_events ORDER BY id")]


@pytest.fixture
def trail(inst: Instance, seed: Seed) -> Instance:
    admin = client_for(inst, Seed.email("admin"))
    for zone in ("Europe/Oslo", "Europe/Rome", "Europe/Vienna"):
        admin.put("/api/settings", json={"timezone": zone})
    result = audit.verify(inst.db)
    assert result.ok and result.first_break is None
    return inst


def _flip(value: Any) -> Any:
    if value is None:
        return "x"
    if isinstance(value, int):
        return value + 1000  # far enough not to collide with a real (chain, chain_seq)
    text = str(value)
    middle = len(text) // 2
    return text[:middle] + ("A" if text[middle] != "A" else "B") + text[middle + 1 :]


def test_append_only_triggers_refuse_update_and_delete(trail: Instance) -> None:
    with pytest.raises(Exception, match="append-only"):
        with trail.db.write() as conn:
            conn.execute("UPDATE audit_events SET actor = 'x' WHERE id = 1")
    with pytest.raises(Exception, match="append-only"):
        with trail.db.write() as conn:
            conn.execute("DELETE FROM audit_events WHERE id = 1")


@pytest.mark.parametrize("field", [c for c in COLUMNS if c != "id"])
def test_a_changed_byte_in_any_field_is_named(trail: Instance, field: str) -> None:
    target = next(e for e in _events(trail) if e["action"] == "org.settings.changed")
    with trail.db.write() as conn:
        _unlock(conn)
        conn.execute(f"UPDATE audit_events SET {field} = ? WHERE id = ?", (_flip(target[field]), target["id"]))
    result = audit.verify(trail.db)
    assert not result.ok
    assert result.first_break is not None and result.first_break.event_id == target["id"]


def test_a_changed_id_is_caught(trail: Instance) -> None:
    last = _events(trail)[-1]
    with trail.db.write() as conn:
        _unlock(conn)
        conn.execute("UPDATE audit_events SET id = id + 1000 WHERE id = ?", (last["id"],))
    result = audit.verify(trail.db)
    assert not result.ok and result.first_break is not None and result.first_break.event_id == last["id"] + 1000


def test_a_deleted_event_is_caught(trail: Instance) -> None:
    chain = [e for e in _events(trail) if e["chain"] == trail_chain(trail)]
    victim, successor = chain[2], chain[3]
    with trail.db.write() as conn:
        _unlock(conn)
        conn.execute("DELETE FROM audit_events WHERE id = ?", (victim["id"],))
    result = audit.verify(trail.db)
    assert not result.ok
    assert result.first_break is not None and result.first_break.event_id == successor["id"]
    assert "missing" in result.first_break.reason


def test_deleting_the_newest_events_is_caught(trail: Instance) -> None:
    newest = _events(trail)[-1]
    with trail.db.write() as conn:
        _unlock(conn)
        conn.execute("DELETE FROM audit_events WHERE id = ?", (newest["id"],))
    result = audit.verify(trail.db)
    assert not result.ok and result.first_break is not None
    assert result.first_break.event_id is None and "newest events" in result.first_break.reason


def test_a_swapped_pair_is_caught(trail: Instance) -> None:
    chain = [e for e in _events(trail) if e["action"] == "org.settings.changed"]
    first, second = chain[0]["id"], chain[1]["id"]
    with trail.db.write() as conn:
        _unlock(conn)
        conn.execute("UPDATE audit_events SET id = -1 WHERE id = ?", (first,))
        conn.execute("UPDATE audit_events SET id = ? WHERE id = ?", (first, second))
        conn.execute("UPDATE audit_events SET id = ? WHERE id = -1", (second,))
    result = audit.verify(trail.db)
    assert not result.ok and result.first_break is not None and result.first_break.event_id == first


def test_details_are_canonical_json_of_the_typed_event(trail: Instance) -> None:
    event = next(e for e in _events(trail) if e["action"] == "org.settings.changed")
    assert json.loads(event["details"]) == {"org_id": event["org_id"], "changes": {"timezone": "Europe/Oslo"}}
    assert event["actor"].startswith("user:") and event["client_addr"] == "127.0.0.1"


def trail_chain(inst: Instance) -> int:
    return next(e["chain"] for e in _events(inst) if e["action"] == "org.settings.changed")
