"""Webhook deliveries against a real HTTP receiver on loopback: signed so that `verify` accepts them and nothing
else; retried on the backoff schedule until delivered or given up; queued only for the active, subscribed hooks
of the event's own organisation; and never sent twice by two runs at once. Time is passed in, never waited for."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from appliance.auth import orgs
from appliance.instance import Instance, cli_context
from appliance.webhooks import delivery, manage, outbox, signing
from appliance.webhooks.signing import SignatureInvalid
from tests.webhooks.receiver import closed_port_url, receiving

T0 = datetime(2030, 1, 15, 9, 0, 0, tzinfo=UTC)  # after any real clock reading, so rows written now are due
TIMEOUT_S = 5.0


def make_org(inst: Instance, slug: str) -> int:
    return orgs.create_org(inst.db, cli_context(), slug, slug.title()).id


def queue(inst: Instance, org_id: int, event: str = "conversation.created", conversation_id: int | None = 7,
          now: datetime = T0) -> list[int]:  # fmt: skip
    with inst.db.write() as conn:
        return outbox.enqueue(conn, org_id, event, {"conversation_id": conversation_id}, conversation_id, now=now)


def deliver(inst: Instance, now: datetime, max_attempts: int = 8) -> delivery.DeliveryRun:
    return delivery.deliver_due(inst.db, now, timeout_s=TIMEOUT_S, max_attempts=max_attempts)


def row(inst: Instance, delivery_id: int) -> dict[str, object]:
    with inst.db.read() as conn:
        return dict(conn.execute("SELECT * FROM webhook_deliveries WHERE id = ?", (delivery_id,)).fetchone())


def test_a_delivery_is_signed_so_that_verify_accepts_it_and_nothing_else(inst: Instance) -> None:
    org = make_org(inst, "north")
    with receiving() as receiver:
        hook, secret = manage.create(inst.db, cli_context(org), org, receiver.url, ["conversation.created"])
        [delivery_id] = queue(inst, org)
        run = deliver(inst, T0)
    assert (run.attempted, run.delivered) == (1, 1)
    [got] = receiver.requests
    assert got.path == "/hook"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-appliance-event"] == "conversation.created"
    assert got.headers["x-appliance-delivery"] == str(delivery_id)
    header = got.headers["x-appliance-signature"]
    assert header.startswith(f"t={int(T0.timestamp())},v1=")
    signing.verify(secret, header, got.body, now=T0.timestamp())
    signing.verify(secret.encode(), header, got.body, now=T0.timestamp() + 299)

    payload = json.loads(got.body)
    assert set(payload) == {"id", "event", "created_at", "org_id", "data"}
    assert (payload["event"], payload["org_id"]) == ("conversation.created", org)
    assert payload["data"] == {"conversation_id": 7}
    assert len(payload["id"]) == 32 and payload["created_at"].startswith("2030-01-15T09:00:00")

    with pytest.raises(SignatureInvalid, match="does not match"):
        signing.verify(secret, header, got.body.replace(b"conversation.created", b"conversation.resolved"),
                       now=T0.timestamp())  # fmt: skip
    with pytest.raises(SignatureInvalid, match="does not match"):
        signing.verify(signing.new_secret(), header, got.body, now=T0.timestamp())
    with pytest.raises(SignatureInvalid, match="replay window"):
        signing.verify(secret, header, got.body, now=T0.timestamp() + 301)
    with pytest.raises(SignatureInvalid, match="replay window"):
        signing.verify(secret, header, got.body, now=T0.timestamp() - 301)
    for bad in ("", "v1=abc", f"t={int(T0.timestamp())}", "t=soon,v1=abc", "nonsense", "t=1,t=2,v1=ab"):
        with pytest.raises(SignatureInvalid, match="malformed|missing"):
            signing.verify(secret, bad, got.body, now=T0.timestamp())

    stored = row(inst, delivery_id)
    assert (stored["status"], stored["attempts"], stored["last_status_code"]) == ("delivered", 1, 200)
    assert stored["delivered_at"] == outbox.iso(T0) and stored["last_error"] is None
    assert deliver(inst, T0 + timedelta(hours=1)).attempted == 0  # delivered once, never again
    assert hook.id == stored["webhook_id"]


def test_sign_is_hmac_sha256_over_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(b"whsec_test", b"1700000000.{\"a\":1}", hashlib.sha256).hexdigest()
    assert signing.sign("whsec_test", 1700000000, b'{"a":1}') == expected
    assert signing.sign(b"whsec_test", 1700000000, b'{"a":1}') == expected
    assert signing.new_secret().startswith("whsec_") and signing.new_secret() != signing.new_secret()


def test_a_receiver_error_is_retried_on_the_backoff_schedule_then_delivered(inst: Instance) -> None:
    org = make_org(inst, "north")
    with receiving([500, 503, 302]) as receiver:
        manage.create(inst.db, cli_context(org), org, receiver.url, ["message.created"])
        [delivery_id] = queue(inst, org, "message.created")
        now = T0
        for attempt, (code, wait) in enumerate([(500, 30), (503, 120), (302, 600)], start=1):
            run = deliver(inst, now)
            assert (run.attempted, run.retrying) == (1, 1)
            stored = row(inst, delivery_id)
            assert (stored["status"], stored["attempts"], stored["last_status_code"]) == ("pending", attempt, code)
            assert stored["next_attempt_at"] == outbox.iso(now + timedelta(seconds=wait))
            assert str(stored["last_error"]).startswith(f"HTTP {code}")
            # not due a second early
            assert deliver(inst, now + timedelta(seconds=wait - 1)).attempted == 0
            now += timedelta(seconds=wait)
        run = deliver(inst, now)
    assert (run.attempted, run.delivered) == (1, 1)
    stored = row(inst, delivery_id)
    assert (stored["status"], stored["attempts"], stored["last_status_code"], stored["last_error"]) == (
        "delivered", 4, 200, None)  # fmt: skip
    # every attempt carried the same event and delivery id; the redirect was not followed
    assert [r.path for r in receiver.requests] == ["/hook"] * 4
    assert len({json.loads(r.body)["id"] for r in receiver.requests}) == 1
    assert {r.headers["x-appliance-delivery"] for r in receiver.requests} == {str(delivery_id)}


def test_a_refused_connection_is_retried_then_marked_failed_after_the_last_attempt(inst: Instance) -> None:
    org = make_org(inst, "north")
    manage.create(inst.db, cli_context(org), org, closed_port_url(), ["conversation.created"])
    [delivery_id] = queue(inst, org)
    now = T0
    for attempt in range(1, 4):
        run = deliver(inst, now, max_attempts=4)
        assert (run.attempted, run.retrying, run.failed) == (1, 1, 0)
        stored = row(inst, delivery_id)
        assert stored["attempts"] == attempt and stored["status"] == "pending"
        assert stored["last_status_code"] is None and "connection failed" in str(stored["last_error"])
        assert len(str(stored["last_error"])) <= delivery.MAX_ERROR_CHARS
        now += timedelta(seconds=delivery.backoff_s(attempt))
        assert stored["next_attempt_at"] == outbox.iso(now)
    run = deliver(inst, now, max_attempts=4)
    assert (run.attempted, run.failed) == (1, 1)
    stored = row(inst, delivery_id)
    assert (stored["status"], stored["attempts"], stored["delivered_at"]) == ("failed", 4, None)
    assert deliver(inst, now + timedelta(days=30), max_attempts=4).attempted == 0  # given up: never sent again


def test_backoff_schedule_grows_and_then_repeats_its_last_step() -> None:
    waits = [delivery.backoff_s(n) for n in range(1, 11)]
    assert waits[:7] == [30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600]
    assert waits == sorted(waits) and waits[-1] == waits[-2] == delivery.BACKOFF_S[-1]


def test_only_active_subscribed_hooks_of_the_events_organisation_get_it(inst: Instance) -> None:
    north, south = make_org(inst, "north"), make_org(inst, "south")
    with receiving() as receiver:
        def hook(org: int, path: str, events: list[str], active: bool = True) -> int:
            return manage.create(inst.db, cli_context(org), org, receiver.url.replace("/hook", path), events,
                                 active)[0].id  # fmt: skip

        hook(north, "/resolved", ["conversation.resolved", "csat.submitted"])
        hook(north, "/all", list(outbox.EVENTS))
        hook(north, "/paused", list(outbox.EVENTS), active=False)
        hook(south, "/south", list(outbox.EVENTS))

        assert len(queue(inst, north, "conversation.resolved")) == 2
        assert len(queue(inst, north, "conversation.created")) == 1
        assert len(queue(inst, south, "csat.submitted")) == 1
        assert queue(inst, make_org(inst, "west"), "conversation.created") == []  # no hooks: nothing queued
        deliver(inst, T0)
    got = sorted((r.path, json.loads(r.body)["event"], json.loads(r.body)["org_id"]) for r in receiver.requests)
    assert got == [
        ("/all", "conversation.created", north),
        ("/all", "conversation.resolved", north),
        ("/resolved", "conversation.resolved", north),
        ("/south", "csat.submitted", south),
    ]


def test_a_paused_hooks_deliveries_wait_until_it_is_active_again(inst: Instance) -> None:
    org = make_org(inst, "north")
    with receiving() as receiver:
        hook, _ = manage.create(inst.db, cli_context(org), org, receiver.url, ["conversation.created"])
        [delivery_id] = queue(inst, org)
        manage.update(inst.db, cli_context(org), org, hook.id, active=False)
        assert deliver(inst, T0).attempted == 0 and row(inst, delivery_id)["status"] == "pending"
        manage.update(inst.db, cli_context(org), org, hook.id, active=True)
        assert deliver(inst, T0).delivered == 1
    assert len(receiver.requests) == 1


def test_enqueue_refuses_unknown_events_and_runs_only_inside_a_transaction(inst: Instance) -> None:
    from appliance.errors import InvalidValue

    org = make_org(inst, "north")
    with pytest.raises(InvalidValue):
        queue(inst, org, "conversation.exploded")
    with inst.db.read() as conn, pytest.raises(RuntimeError):
        outbox.enqueue(conn, org, "conversation.created", {})


def test_a_rolled_back_change_queues_nothing(inst: Instance) -> None:
    org = make_org(inst, "north")
    manage.create(inst.db, cli_context(org), org, closed_port_url(), ["conversation.created"])
    with pytest.raises(ZeroDivisionError), inst.db.write() as conn:
        outbox.enqueue(conn, org, "conversation.created", {"conversation_id": 1})
        1 / 0
    with inst.db.read() as conn:
        assert conn.execute("SELECT count(*) FROM webhook_deliveries").fetchone()[0] == 0


def test_two_concurrent_runs_never_send_the_same_delivery_twice(inst: Instance) -> None:
    org = make_org(inst, "north")
    with receiving() as receiver:
        manage.create(inst.db, cli_context(org), org, receiver.url, ["message.created"])
        ids = [i for _ in range(20) for i in queue(inst, org, "message.created")]
        start = threading.Barrier(2)
        runs: list[delivery.DeliveryRun] = []

        def run() -> None:
            start.wait()
            runs.append(deliver(inst, T0))

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    sent = [int(r.headers["x-appliance-delivery"]) for r in receiver.requests]
    assert sorted(sent) == sorted(ids)  # each exactly once
    assert sum(r.attempted for r in runs) == len(ids) == sum(r.delivered for r in runs)


def test_a_delivery_claimed_by_a_run_in_flight_is_not_sent_by_another(inst: Instance) -> None:
    org = make_org(inst, "north")
    with receiving() as receiver:
        manage.create(inst.db, cli_context(org), org, receiver.url, ["conversation.created"])
        [first, second] = [queue(inst, org)[0], queue(inst, org)[0]]
        # Another run claimed `first` (its lease moved next_attempt_at past now) and is still sending it.
        seen = str(row(inst, first)["next_attempt_at"])
        lease = delivery._claim(inst.db, first, seen, T0 + timedelta(seconds=delivery.lease_s(TIMEOUT_S)))
        assert lease is not None
        assert delivery._claim(inst.db, first, seen, T0 + timedelta(seconds=60)) is None  # the guard holds
        run = deliver(inst, T0)
        assert (run.attempted, run.delivered) == (1, 1)
        assert [r.headers["x-appliance-delivery"] for r in receiver.requests] == [str(second)]
        # a run that died mid-send leaves the row to be retried once its lease has ended
        run = deliver(inst, T0 + timedelta(seconds=delivery.lease_s(TIMEOUT_S)))
        assert run.delivered == 1 and row(inst, first)["status"] == "delivered"


def test_one_dead_receiver_costs_one_attempt_per_run_and_does_not_hold_up_the_others(inst: Instance) -> None:
    org = make_org(inst, "north")
    with receiving() as receiver:
        dead, _ = manage.create(inst.db, cli_context(org), org, closed_port_url(), ["conversation.created"])
        manage.create(inst.db, cli_context(org), org, receiver.url, ["conversation.created"])
        for _ in range(5):
            queue(inst, org)
        run = delivery.deliver_due(inst.db, T0, timeout_s=TIMEOUT_S, max_attempts=8, batch=3)
    assert (run.attempted, run.delivered, run.retrying) == (3, 2, 1)
    with inst.db.read() as conn:
        attempts = [r[0] for r in conn.execute(
            "SELECT attempts FROM webhook_deliveries WHERE webhook_id = ? ORDER BY id", (dead.id,))]  # fmt: skip
    assert attempts == [1, 0, 0, 0, 0]


def test_deleting_a_hook_mid_send_drops_its_result_quietly(inst: Instance) -> None:
    org = make_org(inst, "north")
    hook, _ = manage.create(inst.db, cli_context(org), org, closed_port_url(), ["conversation.created"])
    [delivery_id] = queue(inst, org)
    seen = str(row(inst, delivery_id)["next_attempt_at"])
    lease = delivery._claim(inst.db, delivery_id, seen, T0 + timedelta(seconds=60))
    assert lease is not None
    manage.delete(inst.db, cli_context(org), org, hook.id)
    outcome = delivery._Outcome(200, None)
    assert delivery._record(inst.db, delivery_id, lease, outcome, T0, 8) == "skipped"
