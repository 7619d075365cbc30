"""Escalation rules through the API as a support manager uses it: create, read, edit, reorder and delete, with the
reason for a refusal in the reply; trying a rule saves nothing; agents are refused and other organisations' rules do
not exist."""

from __future__ import annotations

import json
from typing import Any

from appliance.instance import Instance
from appliance.store import now_iso
from tests.conftest import Seed, client_for

BASE = "/api/escalation-rules"


def add_team(inst: Instance, org_id: int, name: str) -> int:
    with inst.db.write() as conn:
        row_id = conn.execute("INSERT INTO teams (org_id, name, created_at) VALUES (?, ?, ?)",
                              (org_id, name, now_iso())).lastrowid  # fmt: skip
    assert row_id is not None
    return int(row_id)


def saved_state(inst: Instance) -> tuple[int, list[Any]]:
    with inst.db.read() as conn:
        count = conn.execute("SELECT count(*) FROM escalation_rules").fetchone()[0]
        events = conn.execute("SELECT action, details FROM audit_events WHERE action = 'escalation.rule_changed'"
                              " ORDER BY id").fetchall()  # fmt: skip
    return int(count), [(e[0], json.loads(e[1])) for e in events]


def test_a_manager_creates_edits_reorders_and_deletes_rules(inst: Instance, seed: Seed) -> None:
    manager = client_for(inst, Seed.email("support_manager"))
    team = add_team(inst, seed.north, "Billing")
    angry = manager.post(BASE, json={"name": "Angry customers", "trigger_type": "sentiment", "trigger_value": 25})
    assert angry.status_code == 201, angry.text
    assert {k: angry.json()[k] for k in ("name", "trigger_value", "action", "priority", "active", "org_id")} == {
        "name": "Angry customers", "trigger_value": "25", "action": "escalate", "priority": 0, "active": True,
        "org_id": seed.north,
    }  # fmt: skip
    assert angry.json()["created_by"].startswith("user:")
    billing = manager.post(BASE, json={"name": "Billing", "trigger_type": "topic", "trigger_value": "billing",
                                       "action": "route_to_team", "target_team_id": team}).json()  # fmt: skip
    vip = manager.post(BASE, json={"name": "VIP", "trigger_type": "customer_value", "trigger_value": "10000",
                                   "action": "tag", "tag": "vip"}).json()  # fmt: skip
    assert [r["id"] for r in manager.get(BASE).json()] == [angry.json()["id"], billing["id"], vip["id"]]

    rule_id = angry.json()["id"]
    got = manager.get(f"{BASE}/{rule_id}")
    assert got.status_code == 200 and got.json() == angry.json()
    edited = manager.put(f"{BASE}/{rule_id}", json={"name": "Very angry", "trigger_type": "sentiment",
                                                    "trigger_value": "10", "active": False})  # fmt: skip
    assert edited.status_code == 200, edited.text
    assert (edited.json()["name"], edited.json()["trigger_value"], edited.json()["active"]) == ("Very angry", "10", False)
    assert edited.json()["priority"] == 0  # kept when the edit names none

    reordered = manager.post(f"{BASE}/reorder", json={"ids": [vip["id"], rule_id, billing["id"]]})
    assert reordered.status_code == 200, reordered.text
    assert [(r["id"], r["priority"]) for r in reordered.json()] == [(vip["id"], 0), (rule_id, 1), (billing["id"], 2)]
    assert [r["id"] for r in manager.get(BASE).json()] == [vip["id"], rule_id, billing["id"]]
    missing = manager.post(f"{BASE}/reorder", json={"ids": [vip["id"]]})
    assert missing.status_code == 422 and "missing" in missing.json()["message"]

    assert manager.delete(f"{BASE}/{billing['id']}").status_code == 204
    assert manager.get(f"{BASE}/{billing['id']}").status_code == 404
    count, events = saved_state(inst)
    assert count == 2
    assert [e["change"] for _, e in events] == ["created"] * 3 + ["updated"] * 4 + ["deleted"]
    assert events[3][1]["fields"] == {"name": ["Angry customers", "Very angry"], "trigger_value": ["25", "10"],
                                      "active": [True, False]}  # fmt: skip


def test_refusals_say_which_field_is_wrong(inst: Instance, seed: Seed) -> None:
    manager = client_for(inst, Seed.email("support_manager"))
    theirs = add_team(inst, seed.south, "South billing")

    bad_regex = manager.post(BASE, json={"name": "Legal", "trigger_type": "keyword", "trigger_value": "lawyer(s"})
    assert bad_regex.status_code == 422
    assert bad_regex.json()["code"] == "invalid"
    assert bad_regex.json()["message"].startswith("trigger_value: not a valid regular expression: missing )")

    other_team = manager.post(BASE, json={"name": "Route", "trigger_type": "sentiment", "trigger_value": 10,
                                          "action": "route_to_team", "target_team_id": theirs})  # fmt: skip
    assert other_team.status_code == 422
    assert other_team.json()["message"] == f"target_team_id: team {theirs} is not a team of this organisation"

    no_team = manager.post(BASE, json={"name": "Route", "trigger_type": "sentiment", "trigger_value": 10,
                                       "action": "route_to_team"})  # fmt: skip
    assert no_team.status_code == 422 and no_team.json()["message"].startswith("target_team_id:")
    unknown_field = manager.post(BASE, json={"name": "x", "trigger_type": "sentiment", "threshold": 10})
    assert unknown_field.status_code == 422 and unknown_field.json()["code"] == "invalid_request"
    assert saved_state(inst) == (0, [])

    # an edit that fails leaves the rule as it was
    rule = manager.post(BASE, json={"name": "Legal", "trigger_type": "keyword", "trigger_value": "lawyer"}).json()
    refused = manager.put(f"{BASE}/{rule['id']}", json={"name": "Legal", "trigger_type": "keyword",
                                                        "trigger_value": "(a+)+"})  # fmt: skip
    assert refused.status_code == 422 and "repetition inside a repetition" in refused.json()["message"]
    assert manager.get(f"{BASE}/{rule['id']}").json() == rule


def test_trying_a_rule_returns_its_decisions_and_saves_nothing(inst: Instance, seed: Seed) -> None:
    manager = client_for(inst, Seed.email("support_manager"))
    team = add_team(inst, seed.north, "Retention")
    rule = {"name": "Cancellations", "trigger_type": "keyword", "trigger_value": r"\bcancel", "action": "route_to_team",
            "target_team_id": team}  # fmt: skip
    before = saved_state(inst)

    fired = manager.post(f"{BASE}/test", json={**rule, "sample": {"text": "I want to CANCEL my plan"}})
    assert fired.status_code == 200, fired.text
    [decision] = fired.json()["decisions"]
    assert fired.json()["fired"] is True
    assert {k: decision[k] for k in ("trigger_type", "action", "team_id", "rule_id")} == {
        "trigger_type": "keyword", "action": "route_to_team", "team_id": team, "rule_id": None,
    }  # fmt: skip
    assert decision["reason"] == r"rule 'Cancellations' (keyword /\bcancel/): the message matches"

    quiet = manager.post(f"{BASE}/test", json={**rule, "sample": {"text": "recancel", "role": "customer"}})
    assert quiet.json() == {"fired": False, "decisions": []}
    ai_low = manager.post(f"{BASE}/test", json={"name": "Unsure", "trigger_type": "confidence", "trigger_value": 60,
                                               "sample": {"role": "ai", "confidence": 59}})  # fmt: skip
    assert ai_low.json()["decisions"][0]["inputs"] == {"confidence": 59, "threshold": 60.0}
    bad = manager.post(f"{BASE}/test", json={**rule, "trigger_value": "[", "sample": {"text": "x"}})
    assert bad.status_code == 422 and bad.json()["message"].startswith("trigger_value: not a valid regular expression")
    assert saved_state(inst) == before


def test_agents_are_refused_and_other_organisations_rules_do_not_exist(inst: Instance, seed: Seed) -> None:
    manager = client_for(inst, Seed.email("support_manager"))
    rule = manager.post(BASE, json={"name": "Angry", "trigger_type": "sentiment", "trigger_value": 20}).json()
    body = {"name": "Angry", "trigger_type": "sentiment", "trigger_value": 5}

    agent = client_for(inst, Seed.email("agent"))
    for method, path, payload in (("GET", BASE, None), ("POST", BASE, body), ("GET", f"{BASE}/{rule['id']}", None),
                                  ("PUT", f"{BASE}/{rule['id']}", body), ("DELETE", f"{BASE}/{rule['id']}", None),
                                  ("POST", f"{BASE}/reorder", {"ids": [rule["id"]]}),
                                  ("POST", f"{BASE}/test", {**body, "sample": {"sentiment": 1}})):  # fmt: skip
        response = agent.request(method, path, json=payload)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["message"] == "this needs the configure_escalations permission"

    south = client_for(inst, Seed.email("support_manager", "south"))
    assert south.get(BASE).json() == []
    assert south.get(f"{BASE}/{rule['id']}").status_code == 404
    assert south.put(f"{BASE}/{rule['id']}", json=body).status_code == 404
    assert south.delete(f"{BASE}/{rule['id']}").status_code == 404
    assert south.post(f"{BASE}/reorder", json={"ids": [rule["id"]]}).status_code == 422
    assert manager.get(f"{BASE}/{rule['id']}").json() == rule
