"""Managing webhooks in the domain layer: what a URL and an event list must be, the secret shown once and rotated,
deleting a hook with its log, redelivering a failed event, and an audit event for every change (without the
secret, and without credentials from the URL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from appliance.auth import orgs
from appliance.errors import Conflict, InvalidValue, NotFound
from appliance.instance import Instance, cli_context
from appliance.webhooks import delivery, manage, outbox, signing
from tests.webhooks.receiver import closed_port_url, receiving

T0 = datetime(2030, 2, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def org(inst: Instance) -> int:
    return orgs.create_org(inst.db, cli_context(), "north", "North Clinic").id


def webhook_events(inst: Instance) -> list[dict[str, object]]:
    with inst.db.read() as conn:
        rows = conn.execute(
            "SELECT org_id, actor, target, details FROM audit_events WHERE action = 'webhook.changed' ORDER BY id"
        ).fetchall()
    return [{"org_id": r[0], "actor": r[1], "target": r[2], **json.loads(r[3])} for r in rows]


@pytest.mark.parametrize("url", [
    "", "   ", "ftp://files.example/hook", "https://", "hooks.example/path", "javascript:alert(1)",
    "https://crm.example/hook#part", "https://crm.example:99999/hook", "https://crm.example/a b",
    "https://crm.example/" + "x" * manage.MAX_URL_CHARS, "file:///etc/passwd",
])  # fmt: skip
def test_a_webhook_url_must_be_http_or_https_with_a_host(inst: Instance, org: int, url: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        manage.create(inst.db, cli_context(org), org, url, ["conversation.created"])
    assert caught.value.status == 422
    assert manage.list_webhooks(inst.db, org) == [] and webhook_events(inst) == []


@pytest.mark.parametrize("events", [[], ["conversation.exploded"], ["conversation.created", "*"]])
def test_events_must_be_known_and_at_least_one(inst: Instance, org: int, events: list[str]) -> None:
    with pytest.raises(InvalidValue) as caught:
        manage.create(inst.db, cli_context(org), org, "https://crm.example/hook", events)
    assert caught.value.status == 422


def test_create_shows_the_secret_once_and_keeps_events_in_their_canonical_order(inst: Instance, org: int) -> None:
    hook, secret = manage.create(inst.db, cli_context(org), org, "https://crm.example/hook",
                                 ["csat.submitted", "conversation.created", "csat.submitted"])  # fmt: skip
    assert secret.startswith(signing.SECRET_PREFIX) and len(secret) > 40
    assert hook.events == ["conversation.created", "csat.submitted"] and hook.active
    assert hook.created_by == "cli:root" and hook.org_id == org
    assert "secret" not in vars(hook)  # the dataclass has no field for it: lists never carry it
    assert manage.get(inst.db, org, hook.id) == hook == manage.list_webhooks(inst.db, org)[0]
    [event] = webhook_events(inst)
    assert (event["change"], event["target"], event["org_id"]) == ("created", f"webhook:{hook.id}", org)
    assert event["events"] == hook.events and secret not in json.dumps(event)


def test_update_changes_only_what_is_given_and_audits_real_changes(inst: Instance, org: int) -> None:
    ctx = cli_context(org)
    hook, _ = manage.create(inst.db, ctx, org, "https://crm.example/hook", ["conversation.created"])
    moved = manage.update(inst.db, ctx, org, hook.id, url="https://crm2.example/in")
    assert (moved.url, moved.events, moved.active) == ("https://crm2.example/in", ["conversation.created"], True)
    paused = manage.update(inst.db, ctx, org, hook.id, events=["message.created"], active=False)
    assert (paused.url, paused.events, paused.active) == ("https://crm2.example/in", ["message.created"], False)
    manage.update(inst.db, ctx, org, hook.id, active=False)  # no change: no event
    with pytest.raises(InvalidValue):
        manage.update(inst.db, ctx, org, hook.id, url="gopher://old.example")
    with pytest.raises(InvalidValue):
        manage.update(inst.db, ctx, org, hook.id, events=[])
    assert manage.get(inst.db, org, hook.id) == paused
    assert [(e["change"], e["url"]) for e in webhook_events(inst)] == [
        ("created", "https://crm.example/hook"), ("updated", "https://crm2.example/in"),
        ("updated", "https://crm2.example/in"),
    ]  # fmt: skip


def test_the_audit_trail_keeps_no_credentials_from_the_url(inst: Instance, org: int) -> None:
    url = "https://bot:hunter2@crm.example:8443/hook?token=abc123"
    hook, _ = manage.create(inst.db, cli_context(org), org, url, ["conversation.created"])
    assert manage.get(inst.db, org, hook.id).url == url  # the hook itself keeps it: it is sent there
    [event] = webhook_events(inst)
    assert event["url"] == "https://crm.example:8443/hook"


def test_rotate_secret_replaces_it_for_queued_deliveries_too(inst: Instance, org: int) -> None:
    ctx = cli_context(org)
    with receiving() as receiver:
        hook, old = manage.create(inst.db, ctx, org, receiver.url, ["conversation.created"])
        with inst.db.write() as conn:
            outbox.enqueue(conn, org, "conversation.created", {"conversation_id": 1}, 1, now=T0)
        rotated, new = manage.rotate_secret(inst.db, ctx, org, hook.id)
        delivery.deliver_due(inst.db, T0, timeout_s=5, max_attempts=3)
    assert rotated == hook and new != old and new.startswith("whsec_")
    [got] = receiver.requests
    signing.verify(new, got.headers["x-appliance-signature"], got.body, now=T0.timestamp())
    with pytest.raises(signing.SignatureInvalid):
        signing.verify(old, got.headers["x-appliance-signature"], got.body, now=T0.timestamp())
    events = webhook_events(inst)
    assert [e["change"] for e in events] == ["created", "secret_rotated"]
    assert old not in json.dumps(events) and new not in json.dumps(events)


def test_delete_removes_the_hook_and_its_delivery_log(inst: Instance, org: int) -> None:
    ctx = cli_context(org)
    hook, _ = manage.create(inst.db, ctx, org, closed_port_url(), ["conversation.created"])
    keep, _ = manage.create(inst.db, ctx, org, closed_port_url(), ["conversation.created"])
    with inst.db.write() as conn:
        outbox.enqueue(conn, org, "conversation.created", {}, None, now=T0)
    manage.delete(inst.db, ctx, org, hook.id)
    with pytest.raises(NotFound):
        manage.get(inst.db, org, hook.id)
    with pytest.raises(NotFound):
        manage.deliveries(inst.db, org, hook.id)
    with pytest.raises(NotFound):
        manage.delete(inst.db, ctx, org, hook.id)
    assert len(manage.deliveries(inst.db, org, keep.id)) == 1
    with inst.db.read() as conn:
        left = conn.execute("SELECT count(*) FROM webhook_deliveries WHERE webhook_id = ?", (hook.id,)).fetchone()[0]
    assert left == 0
    assert [e["change"] for e in webhook_events(inst)] == ["created", "created", "deleted"]


def test_another_organisations_hooks_and_deliveries_look_missing(inst: Instance, org: int) -> None:
    south = orgs.create_org(inst.db, cli_context(), "south", "South Bank").id
    hook, _ = manage.create(inst.db, cli_context(south), south, closed_port_url(), ["conversation.created"])
    with inst.db.write() as conn:
        [delivery_id] = outbox.enqueue(conn, south, "conversation.created", {}, None, now=T0)
    ctx = cli_context(org)
    for call in (
        lambda: manage.get(inst.db, org, hook.id),
        lambda: manage.update(inst.db, ctx, org, hook.id, active=False),
        lambda: manage.rotate_secret(inst.db, ctx, org, hook.id),
        lambda: manage.delete(inst.db, ctx, org, hook.id),
        lambda: manage.deliveries(inst.db, org, hook.id),
        lambda: manage.redeliver(inst.db, ctx, org, delivery_id),
    ):
        with pytest.raises(NotFound):
            call()
    assert manage.list_webhooks(inst.db, org) == [] and manage.get(inst.db, south, hook.id).active


def test_the_delivery_log_and_redelivering_a_failed_event(inst: Instance, org: int) -> None:
    ctx = cli_context(org)
    with receiving([500]) as receiver:
        hook, _ = manage.create(inst.db, ctx, org, receiver.url, ["conversation.created", "message.created"])
        with inst.db.write() as conn:
            [failing] = outbox.enqueue(conn, org, "conversation.created", {"conversation_id": 3}, 3, now=T0)
            [queued] = outbox.enqueue(conn, org, "message.created", {"message_id": 9}, 3, now=T0 + timedelta(hours=1))
        delivery.deliver_due(inst.db, T0, timeout_s=5, max_attempts=1)

        log = manage.deliveries(inst.db, org, hook.id)
        assert [d.id for d in log] == [queued, failing]  # newest first
        failed = log[1]
        assert (failed.event, failed.status, failed.attempts, failed.last_status_code) == (
            "conversation.created", "failed", 1, 500)  # fmt: skip
        assert failed.last_error == "HTTP 500" and failed.payload is None and failed.next_attempt_at is None
        assert failed.conversation_id == 3 and failed.delivered_at is None and len(failed.event_id) == 32
        assert log[0].status == "pending" and log[0].next_attempt_at == outbox.iso(T0 + timedelta(hours=1))
        with_payload = manage.deliveries(inst.db, org, hook.id, limit=1, include_payload=True)
        assert [d.id for d in with_payload] == [queued] and with_payload[0].payload is not None
        assert with_payload[0].payload["data"] == {"message_id": 9}

        with pytest.raises(Conflict):
            manage.redeliver(inst.db, ctx, org, queued)  # pending: nothing to redeliver
        with pytest.raises(NotFound):
            manage.redeliver(inst.db, ctx, org, 999_999)
        again = manage.redeliver(inst.db, ctx, org, failing, now=T0 + timedelta(minutes=5))
        assert (again.status, again.attempts, again.next_attempt_at) == (
            "pending", 0, outbox.iso(T0 + timedelta(minutes=5)))  # fmt: skip
        run = delivery.deliver_due(inst.db, T0 + timedelta(minutes=5), timeout_s=5, max_attempts=1)
    assert run.delivered == 1
    done = manage.get_delivery(inst.db, org, failing)
    assert (done.status, done.attempts, done.last_status_code, done.last_error) == ("delivered", 1, 200, None)
    assert len(receiver.requests) == 2
    with pytest.raises(Conflict):
        manage.redeliver(inst.db, ctx, org, failing)  # delivered
    assert [e["change"] for e in webhook_events(inst)] == ["created", "redelivered"]


def test_an_organisation_has_a_bounded_number_of_hooks(inst: Instance, org: int) -> None:
    for n in range(manage.MAX_WEBHOOKS_PER_ORG):
        manage.create(inst.db, cli_context(org), org, f"https://crm.example/{n}", ["conversation.created"])
    with pytest.raises(Conflict):
        manage.create(inst.db, cli_context(org), org, "https://crm.example/one-more", ["conversation.created"])
