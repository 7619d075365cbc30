"""The rollups: recomputing gives the same rows; a run recomputes today, yesterday and the days changes touched
(a late CSAT, a cleared review); days older than the retention period stay as computed after their conversations
are purged (and their reviews with them); the background task runs every 15 minutes; a person's "recompute now" is
audited."""

from __future__ import annotations

import datetime as dt
from datetime import UTC, datetime
from typing import Any

import pytest

from appliance.analytics import reviews
from appliance.analytics.dashboard import dashboard
from appliance.analytics.rollup import rollup_days, rollup_due, rollup_now
from appliance.errors import InvalidValue
from appliance.instance import Instance, cli_context
from appliance.retention.conversations import purge
from appliance.tasks import Tasks
from tests.analytics.analytics_dataset import D1, D2, D3, Dataset, build, fixed_clock, review
from tests.conftest import Seed

EVENING_D3 = datetime(2030, 3, 6, 18, 0, tzinfo=UTC)


@pytest.fixture
def data(inst: Instance, seed: Seed, monkeypatch: pytest.MonkeyPatch) -> Dataset:
    built = build(inst, seed, monkeypatch)
    review(inst, built)
    return built


def _rows(inst: Instance, with_time: bool = True) -> list[dict[str, Any]]:
    with inst.db.read() as conn:
        rows = [dict(r) for r in conn.execute("SELECT * FROM analytics_daily ORDER BY org_id, day, team_id")]
    return rows if with_time else [{k: v for k, v in r.items() if k != "computed_at"} for r in rows]


def test_recomputing_gives_the_same_rows(inst: Instance, data: Dataset) -> None:
    first = rollup_days(inst.db, data.org_id, [D1, D2, D3], now=EVENING_D3)
    assert first.days == ["2030-03-04", "2030-03-05", "2030-03-06"] and first.rows == 5  # teams 0 and 1, 1, 0
    rows = _rows(inst)
    again = rollup_days(inst.db, data.org_id, [D3, D1, D2, D1], now=EVENING_D3)
    assert again.days == first.days and _rows(inst) == rows
    rollup_days(inst.db, data.org_id, [D1, D2, D3])
    assert _rows(inst, with_time=False) == [{k: v for k, v in r.items() if k != "computed_at"} for r in rows]
    assert {r["computed_at"] for r in _rows(inst)} != {r["computed_at"] for r in rows}


def test_a_run_recomputes_the_days_changes_touched(inst: Instance, data: Dataset,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    first = rollup_due(inst.db, data.org_id, now=EVENING_D3)
    assert first.days == ["2030-03-04", "2030-03-05", "2030-03-06"]  # the first run: every day with data
    assert dashboard(inst.db, data.org_id, D1, D3).rolled_up_at == "2030-03-06T18:00:00.000000Z"
    # Two days later: C2 (day 1) is rated, and the C6 label (day 2) is cleared.
    with fixed_clock(monkeypatch) as clock:
        clock.at(dt.date(2030, 3, 8), "09:00:00")
        inst.flow.csat(cli_context(data.org_id), data.org_id, data.conversations["C2"], "C2", 3, "")
    reviews.clear_review(inst.db, cli_context(data.org_id), data.org_id, data.replies["C6"][0])
    later = rollup_due(inst.db, data.org_id, now=datetime(2030, 3, 8, 12, 0, tzinfo=UTC))
    assert later.days == ["2030-03-04", "2030-03-05", "2030-03-07", "2030-03-08"]  # not day 3: nothing changed there
    d = dashboard(inst.db, data.org_id, D1, D3)
    assert (d.csat.count, d.csat.average) == (4, (5 + 4 + 2 + 3) / 4)
    assert (d.ai_accuracy.reviewed, d.ai_accuracy.correct) == (4, 2)
    assert rollup_due(inst.db, data.org_id, now=datetime(2030, 3, 8, 12, 15, tzinfo=UTC)).days == [
        "2030-03-07", "2030-03-08"]  # fmt: skip


def test_days_past_retention_stay_after_their_conversations_are_purged(inst: Instance, data: Dataset) -> None:
    rollup_due(inst.db, data.org_id, now=EVENING_D3)
    before = dashboard(inst.db, data.org_id, D1, D3)
    ten_days_on = datetime(2030, 3, 10, 0, 0, tzinfo=UTC)
    purged = purge(inst.db, cli_context(), 5, now=ten_days_on)  # cutoff 2030-03-05 00:00: day 1's conversations
    assert sum(p.conversations for p in purged) == 4
    with inst.db.read() as conn:
        assert conn.execute("SELECT count(*) FROM answer_reviews").fetchone()[0] == 2  # C5, C6 left; C1, C2, C4 gone
        assert conn.execute("SELECT count(*) FROM conversations").fetchone()[0] == 6
    done = rollup_days(inst.db, data.org_id, [D1, D2, D3], now=ten_days_on, retention_days=5)
    assert done.frozen == ["2030-03-04", "2030-03-05"] and done.days == ["2030-03-06"]
    assert dashboard(inst.db, data.org_id, D1, D3) == before
    with inst.db.read() as conn:
        text = " ".join(str(v) for r in conn.execute("SELECT * FROM analytics_daily") for v in tuple(r))
    assert "password" not in text and "complaint" not in text  # rows carry no customer text


def test_the_task_runs_every_15_minutes_for_every_organisation(inst: Instance, seed: Seed) -> None:
    tasks = Tasks(inst)
    due = [m for m in range(60) if any(t.name.endswith("rollup_analytics")
                                       for t in tasks.huey.read_periodic(dt.datetime(2030, 1, 1, 10, m)))]  # fmt: skip
    assert due == [0, 15, 30, 45]
    received = inst.flow.receive(cli_context(seed.south), seed.south, "Hello", sender="visitor:v", visitor_id="v")
    Tasks(inst, immediate=True).rollup_analytics()
    with inst.db.read() as conn:
        states = conn.execute("SELECT org_id FROM analytics_state ORDER BY org_id").fetchall()
        today = conn.execute("SELECT substr(created_at, 1, 10) FROM messages WHERE id = ?",
                             (received.message_id,)).fetchone()[0]  # fmt: skip
    assert [r[0] for r in states] == [seed.north, seed.south]
    assert [(r["org_id"], r["day"], r["conversations"]) for r in _rows(inst)] == [(seed.south, today, 1)]


def test_recompute_now_is_audited_and_checks_its_range(inst: Instance, data: Dataset) -> None:
    ctx = cli_context(data.org_id)
    done = rollup_now(inst.db, ctx, data.org_id, since=D1, until=D2, now=datetime(2030, 4, 1, tzinfo=UTC))
    assert done.days == ["2030-03-04", "2030-03-05", "2030-03-06", "2030-03-31", "2030-04-01"]
    for since, until in ((D2, D1), (D1, None)):
        with pytest.raises(InvalidValue):
            rollup_now(inst.db, ctx, data.org_id, since=since, until=until)
    with inst.db.read() as conn:
        events = conn.execute("SELECT details FROM audit_events WHERE action = 'analytics.rolled_up'").fetchall()
    assert len(events) == 1 and "2030-03-05" in events[0][0]
