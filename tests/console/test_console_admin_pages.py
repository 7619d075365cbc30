"""The console's rules, team, settings and audit pages through the app in-process: each page refuses the roles
without its permission; an admin creates a person and changes the confidence threshold (the database and the audit
trail show both); a rule with a bad regular expression is refused with the domain's message and nothing changes;
rules are created, tried on a sample, moved and switched off; the widget's theme and embed snippet; API keys shown
once; teams with business hours and agents' capacity; the models' status and a failed webhook delivery sent again;
the audit trail searched, verified and exported as a signed zip that verifies offline."""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from appliance.audit.export import verify_export
from appliance.auth import orgs, users
from appliance.auth.roles import ROLE_PERMISSIONS, Permission, Role
from appliance.conversations import routing
from appliance.escalation import rules
from appliance.inference import registry
from appliance.instance import Instance, cli_context
from appliance.webhooks import delivery, manage, outbox
from tests.conftest import PASSWORD, ROLES, Seed, login, make_client
from tests.console.test_console_pages import console, secured
from tests.webhooks.receiver import receiving

P = Permission
PAGES = {"/console/rules": {P.CONFIGURE_ESCALATIONS}, "/console/team": {P.MANAGE_TEAM, P.MANAGE_AGENTS},
         "/console/settings": {P.MANAGE_SETTINGS}, "/console/audit": {P.VIEW_AUDIT},
         "/console/audit/verify": {P.VIEW_AUDIT}}  # fmt: skip
T0 = datetime(2030, 3, 1, 8, 0, 0, tzinfo=UTC)


def actions(inst: Instance, action: str) -> list[dict[str, object]]:
    with inst.db.read() as conn:
        rows = conn.execute("SELECT actor, target, details FROM audit_events WHERE action = ? ORDER BY id",
                            (action,)).fetchall()  # fmt: skip
    return [{"actor": r[0], "target": r[1], "details": json.loads(r[2])} for r in rows]


@pytest.mark.parametrize("role", ROLES)
def test_each_page_opens_for_its_permission_and_refuses_the_others(inst: Instance, seed: Seed, role: str) -> None:
    client, _ = console(inst, role)
    held = ROLE_PERMISSIONS[Role(role)]
    for path, needs in PAGES.items():
        response = secured(client.get(path, follow_redirects=False))
        expected = 200 if needs & held else 403
        assert response.status_code == expected, f"{role} got {response.status_code} on {path}"
        if expected == 403:
            assert "Not allowed" in response.text


def test_an_admin_creates_a_person_and_changes_the_threshold(inst: Instance, seed: Seed) -> None:
    admin, token = console(inst, "admin")
    created = admin.post("/console/team/users", data={"csrf_token": token, "email": "nurse@north.example",
                                                      "name": "Night Nurse", "role": "agent", "password": PASSWORD},
                         follow_redirects=False)  # fmt: skip
    assert created.status_code == 303 and created.headers["location"] == "/console/team#users"
    member = users.find_member_by_email(inst.db, seed.north, "nurse@north.example")
    assert member.role == "agent" and member.name == "Night Nurse"
    assert [e["target"] for e in actions(inst, "user.created")][-1] == f"user:{member.id}"
    assert "nurse@north.example" in admin.get("/console/team").text
    newcomer = make_client(admin.app)
    login(newcomer, "nurse@north.example")  # the new person signs in with the password given
    assert newcomer.get("/console/inbox").status_code == 200

    changed = admin.post("/console/settings", data={"csrf_token": token, "answer_threshold": "72"},
                         follow_redirects=False)  # fmt: skip
    assert changed.status_code == 303
    assert orgs.get_org(inst.db, seed.north).settings["answer_threshold"] == 72
    assert actions(inst, "org.settings.changed")[-1]["actor"].startswith("user:")
    assert 'value="72"' in admin.get("/console/settings").text

    refused = admin.post("/console/settings", data={"csrf_token": token, "answer_threshold": "101"})
    assert refused.status_code == 422 and "from 0 to 100" in refused.text
    assert orgs.get_org(inst.db, seed.north).settings["answer_threshold"] == 72


def test_the_settings_page_sets_the_emergency_phrases_article_and_answers_while_waiting(inst: Instance,
                                                                                       seed: Seed) -> None:
    admin, token = console(inst, "admin")
    page = admin.get("/console/settings").text
    assert 'name="emergency_terms"' in page and 'name="answer_while_waiting"' in page
    changed = admin.post("/console/settings", data={"csrf_token": token, "answer_threshold": "85",
                                                    "emergency_terms": "gas leak\n\n  fire alarm \n",
                                                    "emergency_article_id": "", "answer_while_waiting": "off"},
                         follow_redirects=False)  # fmt: skip
    assert changed.status_code == 303
    settings = orgs.get_org(inst.db, seed.north).settings
    assert settings["emergency_terms"] == ["gas leak", "fire alarm"] and settings["answer_while_waiting"] is False
    assert "emergency_article_id" not in settings
    page = admin.get("/console/settings").text
    assert "gas leak\nfire alarm</textarea>" in page and '<option value="off" selected>' in page
    for bad in ({"emergency_article_id": "abc"}, {"emergency_article_id": "4242"}, {"answer_while_waiting": "maybe"},
                {"emergency_terms": "x"}):
        refused = admin.post("/console/settings", data={"csrf_token": token, "answer_threshold": "85", **bad})
        assert refused.status_code == 422 and "Not saved" in refused.text, bad
    assert orgs.get_org(inst.db, seed.north).settings == settings  # nothing changed


def test_a_duplicate_person_and_a_role_change_and_disabling(inst: Instance, seed: Seed) -> None:
    admin, token = console(inst, "admin")
    again = admin.post("/console/team/users", data={"csrf_token": token, "email": Seed.email("agent"), "role": "agent",
                                                    "password": PASSWORD})  # fmt: skip
    assert again.status_code == 409 and "Not saved" in again.text
    agent = users.find_member_by_email(inst.db, seed.north, Seed.email("agent"))
    assert admin.post(f"/console/team/users/{agent.id}/role", data={"csrf_token": token, "role": "support_manager"},
                      follow_redirects=False).status_code == 303  # fmt: skip
    assert users.get_member(inst.db, seed.north, agent.id).role == "support_manager"
    assert admin.post(f"/console/team/users/{agent.id}/disable", data={"csrf_token": token},
                      follow_redirects=False).status_code == 303  # fmt: skip
    assert users.get_member(inst.db, seed.north, agent.id).disabled


def test_a_bad_rule_regex_is_refused_and_changes_nothing(inst: Instance, seed: Seed) -> None:
    manager, token = console(inst, "support_manager")
    before = rules.list_rules(inst.db, seed.north), len(actions(inst, "escalation.rule_changed"))
    form = {"csrf_token": token, "name": "Broken", "trigger_type": "keyword", "trigger_value": "refund(",
            "action": "escalate", "active": "true"}  # fmt: skip
    refused = secured(manager.post("/console/rules", data=form))
    assert refused.status_code == 422
    assert "Not saved: trigger_value" in refused.text and 'value="refund("' in refused.text  # kept as typed
    assert (rules.list_rules(inst.db, seed.north), len(actions(inst, "escalation.rule_changed"))) == before


def test_rules_are_created_tried_moved_and_switched_off(inst: Instance, seed: Seed) -> None:
    manager, token = console(inst, "support_manager")
    for name, pattern in (("Refunds", "refund|charged twice"), ("Complaints", "complain")):
        saved = manager.post("/console/rules", data={"csrf_token": token, "name": name, "trigger_type": "keyword",
                                                     "trigger_value": pattern, "action": "escalate", "active": "true"},
                             follow_redirects=False)  # fmt: skip
        assert saved.status_code == 303
    first, second = rules.list_rules(inst.db, seed.north)
    assert [first.name, second.name] == ["Refunds", "Complaints"]

    trial = manager.post("/console/rules/test", headers={"HX-Request": "true"},
                         data={"csrf_token": token, "trigger_type": "keyword", "trigger_value": "refund",
                               "action": "escalate", "sample_text": "I want a refund"})  # fmt: skip
    assert trial.status_code == 200 and trial.text.lstrip().startswith('<div id="rule-trial"')
    assert "The rule fires" in trial.text and "keyword" in trial.text
    missed = manager.post("/console/rules/test", headers={"HX-Request": "true"},
                          data={"csrf_token": token, "trigger_type": "keyword", "trigger_value": "refund",
                                "sample_text": "Opening hours?"})  # fmt: skip
    assert "does not fire" in missed.text
    bad = manager.post("/console/rules/test", headers={"HX-Request": "true"},
                       data={"csrf_token": token, "trigger_type": "keyword", "trigger_value": "(("})  # fmt: skip
    assert "was not tried: trigger_value" in bad.text
    assert len(rules.list_rules(inst.db, seed.north)) == 2  # trying saves nothing

    assert manager.post(f"/console/rules/{second.id}/move", data={"csrf_token": token, "direction": "up"},
                        follow_redirects=False).status_code == 303  # fmt: skip
    assert [r.name for r in rules.list_rules(inst.db, seed.north)] == ["Complaints", "Refunds"]
    manager.post(f"/console/rules/{first.id}/active", data={"csrf_token": token, "active": "false"})
    assert not rules.get_rule(inst.db, seed.north, first.id).active

    edit = manager.get(f"/console/rules/{first.id}")
    assert edit.status_code == 200 and 'value="refund|charged twice"' in edit.text
    manager.post(f"/console/rules/{first.id}", data={"csrf_token": token, "name": "Refunds and charges",
                                                      "trigger_type": "keyword", "trigger_value": "refund",
                                                      "action": "escalate", "active": "true"})  # fmt: skip
    saved = rules.get_rule(inst.db, seed.north, first.id)
    assert (saved.name, saved.trigger_value, saved.active) == ("Refunds and charges", "refund", True)


def test_the_widget_theme_and_its_embed_snippet(inst: Instance, seed: Seed) -> None:
    admin, token = console(inst, "admin")
    created = admin.post("/console/settings/widget-keys", data={"csrf_token": token})
    assert created.status_code == 200 and "Widget key created." in created.text
    secret = re.search(r'<code class="secret">([^<]+)</code>', created.text)
    assert secret is not None
    assert secret.group(1) not in admin.get("/console/settings").text  # shown once
    key_id = int(re.findall(r'id="widget-key-(\d+)"', created.text)[0])
    admin.post(f"/console/settings/widget-keys/{key_id}/theme",
               data={"csrf_token": token, "primary_color": "#7a1f5c", "text_color": "#ffffff",
                     "position": "bottom-left", "title": "Ward help"})  # fmt: skip
    page = admin.get("/console/settings").text
    assert 'value="#7a1f5c"' in page and 'data-preview-text="title" data-fallback="Support">Ward help' in page
    snippet = re.search(r'<pre class="snippet"><code>([^<]+)</code>', page)
    assert snippet is not None and "integrity=&#34;sha384-" in snippet.group(1)
    refused = admin.post(f"/console/settings/widget-keys/{key_id}/theme",
                         data={"csrf_token": token, "primary_color": "red"})  # fmt: skip
    assert refused.status_code == 422 and "Theme not saved" in refused.text


def test_an_api_key_is_shown_once_and_revoked(inst: Instance, seed: Seed) -> None:
    admin, token = console(inst, "admin")
    made = admin.post("/console/team/apikeys", data={"csrf_token": token, "name": "Ticketing",
                                                     "scopes": ["view_all_conversations"]})  # fmt: skip
    shown = re.search(r'<code class="secret">([^<]+)</code>', made.text)
    assert made.status_code == 200 and shown is not None
    assert shown.group(1) not in admin.get("/console/team").text
    key_id = actions(inst, "apikey.created")[-1]["target"]
    assert isinstance(key_id, str)
    admin.post(f"/console/team/apikeys/{key_id.split(':')[-1]}/revoke", data={"csrf_token": token})
    assert actions(inst, "apikey.revoked")


def test_the_audit_trail_is_searched_verified_and_exported_signed(inst: Instance, seed: Seed, tmp_path: Path) -> None:
    officer, token = console(inst, "compliance_officer")
    found = officer.get("/console/audit", params={"action": "user.created"})
    assert found.status_code == 200 and "user.created" in found.text
    by_email = officer.get("/console/audit", params={"actor": Seed.email("compliance_officer")})
    assert by_email.status_code == 200 and "auth.login" in by_email.text
    unknown = officer.get("/console/audit", params={"actor": "nobody@north.example"})
    assert unknown.status_code == 422 and "nobody in this organisation" in unknown.text
    assert actions(inst, "audit.read")  # reading the trail is audited, as through the API

    verified = secured(officer.get("/console/audit/verify"))
    assert verified.status_code == 200 and "Chain verified: OK." in verified.text

    exported = secured(officer.post("/console/audit/export", data={"csrf_token": token, "since": "2000-01-01T00:00"}))
    assert exported.status_code == 200 and exported.headers["content-type"] == "application/zip"
    assert exported.headers["content-disposition"].startswith('attachment; filename="audit-export-2000-01-01-')
    with zipfile.ZipFile(io.BytesIO(exported.content)) as zf:
        assert {"events.jsonl", "manifest.json", "manifest.sig"} <= set(zf.namelist())
        zf.extractall(tmp_path)
    check = verify_export(tmp_path, inst.signing_key().public_key())
    assert check.ok and check.events > 0
    assert actions(inst, "audit.exported")

    bad = officer.post("/console/audit/export", data={"csrf_token": token, "since": "yesterday"})
    assert bad.status_code == 400 and "Not exported" in bad.text


def test_a_manager_makes_a_team_with_business_hours_and_sets_capacity(inst: Instance, seed: Seed) -> None:
    manager, token = console(inst, "support_manager")
    page = manager.get("/console/team")
    assert page.status_code == 200 and 'id="users"' not in page.text and 'id="apikeys"' not in page.text
    agent = users.find_member_by_email(inst.db, seed.north, Seed.email("agent"))
    form = {"csrf_token": token, "name": "Billing", "members": [str(agent.id)], "timezone": "Europe/Paris",
            "hours_mon": "09:00-12:00, 13:00-17:00", "hours_fri": "09:00-15:00", "out_of_hours_message": "Back at 9"}
    assert manager.post("/console/team/teams", data=form, follow_redirects=False).status_code == 303
    [team] = routing.list_teams(inst.db, seed.north)
    assert (team.name, team.members) == ("Billing", [agent.id])
    days = {"mon": [["09:00", "12:00"], ["13:00", "17:00"]], "fri": [["09:00", "15:00"]]}
    assert team.business_hours == {"timezone": "Europe/Paris", "days": days}
    assert 'value="09:00-12:00, 13:00-17:00"' in manager.get("/console/team").text

    bad = manager.post(f"/console/team/teams/{team.id}", data={**form, "hours_tue": "17:00-09:00"})
    assert bad.status_code == 422 and "Not saved: business_hours.days.tue" in bad.text
    assert routing.list_teams(inst.db, seed.north)[0].business_hours == team.business_hours
    always = manager.post(f"/console/team/teams/{team.id}", data={"csrf_token": token, "name": "Billing desk"},
                          follow_redirects=False)  # fmt: skip
    assert always.status_code == 303
    changed = routing.list_teams(inst.db, seed.north)[0]
    assert (changed.name, changed.members, changed.business_hours) == ("Billing desk", [], {})

    assert manager.post(f"/console/team/agents/{agent.id}", data={"csrf_token": token, "capacity": "7"},
                        follow_redirects=False).status_code == 303  # fmt: skip
    with inst.db.read() as conn:
        assert routing.agent(conn, seed.north, agent.id).capacity == 7
    assert manager.post("/console/team/users", data={"csrf_token": token, "email": "x@north.example",
                                                     "role": "agent", "password": PASSWORD}).status_code == 403


def test_the_models_and_a_failed_webhook_delivery_redelivered(inst: Instance, seed: Seed) -> None:
    admin, token = console(inst, "admin")
    page = admin.get("/console/settings").text
    for spec in registry.load_manifest(inst.settings.models_manifest):
        assert f"<td>{spec.name}</td>" in page
    with receiving([500]) as receiver:
        hook, _ = manage.create(inst.db, cli_context(seed.north), seed.north, receiver.url, ["conversation.resolved"])
        with inst.db.write() as conn:
            [delivery_id] = outbox.enqueue(conn, seed.north, "conversation.resolved", {"note": "private"}, 4, now=T0)
        delivery.deliver_due(inst.db, T0, timeout_s=5, max_attempts=1)
        page = admin.get("/console/settings").text
        assert f"/console/settings/webhooks/deliveries/{delivery_id}/redeliver" in page and "HTTP 500" in page
        assert "private" not in page  # the log never shows payloads
        redone = admin.post(f"/console/settings/webhooks/deliveries/{delivery_id}/redeliver",
                            data={"csrf_token": token}, follow_redirects=False)  # fmt: skip
        assert redone.status_code == 303
        assert manage.get_delivery(inst.db, seed.north, delivery_id).status == "delivered"
        again = admin.post(f"/console/settings/webhooks/deliveries/{delivery_id}/redeliver", data={"csrf_token": token})
        assert again.status_code == 409
    assert len(receiver.requests) == 2 and hook.id
