"""The background task that sends webhooks: run at once in immediate mode, queued with no arguments at all
otherwise (the queue file is outside the encrypted database), scheduled every minute, and never raising."""

from __future__ import annotations

import datetime as dt

from appliance.auth import orgs
from appliance.instance import Instance, cli_context
from appliance.tasks import Tasks
from appliance.webhooks import manage, outbox
from tests.webhooks.receiver import receiving


def test_immediate_mode_sends_due_deliveries_in_the_callers_thread(inst: Instance) -> None:
    org = orgs.create_org(inst.db, cli_context(), "north", "North").id
    with receiving() as receiver:
        manage.create(inst.db, cli_context(org), org, receiver.url, ["csat.submitted"])
        with inst.db.write() as conn:
            [delivery_id] = outbox.enqueue(conn, org, "csat.submitted", {"conversation_id": 1, "rating": 5}, 1)
        Tasks(inst, immediate=True).deliver_webhooks()
    assert manage.get_delivery(inst.db, org, delivery_id).status == "delivered"
    assert len(receiver.requests) == 1


def test_the_queued_message_carries_nothing_and_runs_every_minute(inst: Instance) -> None:
    tasks = Tasks(inst)
    tasks.deliver_webhooks()
    [message] = tasks.huey.pending()
    assert message.name.endswith("deliver_webhooks") and message.args == () and message.kwargs == {}
    minutes = [dt.datetime(2030, 1, 1, 10, m) for m in (0, 1, 17, 59)]
    for moment in minutes:
        assert any(t.name.endswith("deliver_webhooks") for t in tasks.huey.read_periodic(moment))


def test_a_failing_run_is_logged_not_raised(inst: Instance) -> None:
    tasks = Tasks(inst, immediate=True)
    inst.db.close()  # every database call now fails
    tasks.deliver_webhooks()
