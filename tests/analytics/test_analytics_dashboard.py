"""Every dashboard figure over the seeded days (tests/analytics/analytics_dataset.py), checked against values worked
out by hand from the script, not by the code under test; medians over a range taken over every value; one team's
figures; bad ranges refused."""

from __future__ import annotations

from datetime import date

import pytest

from appliance.analytics.dashboard import (
    AgentFigures, BandAccuracy, DayVolume, Durations, EscalationReason, Resolution, SentimentGroup, dashboard,
)  # fmt: skip
from appliance.analytics.rollup import rollup_days
from appliance.errors import InvalidValue, NotFound
from appliance.instance import Instance
from tests.analytics.analytics_dataset import D1, D2, D3, Dataset, build, review
from tests.conftest import Seed


@pytest.fixture
def data(inst: Instance, seed: Seed, monkeypatch: pytest.MonkeyPatch) -> Dataset:
    built = build(inst, seed, monkeypatch)
    review(inst, built)
    rollup_days(inst.db, seed.north, [D1, D2, D3])
    return built


def test_volume_resolution_and_escalation(inst: Instance, data: Dataset) -> None:
    d = dashboard(inst.db, data.org_id, D1, D3)
    assert d.volume == [DayVolume("2030-03-04", 4, 4), DayVolume("2030-03-05", 4, 4), DayVolume("2030-03-06", 2, 3)]
    # 10 started: C1, C2, C4, C6, C7, C9 resolved by the assistant; C3, C5, C8 by agents; C10 open.
    assert d.resolution == Resolution(conversations=10, resolved=9, ai_resolved=6, agent_resolved=3,
                                      other_resolved=0, open=1, resolution_rate=9 / 10, ai_share=6 / 9,
                                      agent_share=3 / 9)  # fmt: skip
    # Escalated: C3 and C8 by the complaints rule, C5 and C10 by a refusal (the failed-attempt limit is 1 in the
    # data set); nobody has answered C10 yet.
    assert d.escalation.escalated == 4 and d.escalation.rate == 4 / 10 and d.escalation.unanswered == 1
    assert d.escalation.reasons == [EscalationReason("keyword", data.rule_id, "complaints", 2),
                                    EscalationReason("repeated_failure", None, None, 2)]  # fmt: skip


def test_response_and_resolution_times(inst: Instance, data: Dataset) -> None:
    d = dashboard(inst.db, data.org_id, D1, D3)
    # First responses: 4, 6, 180, 10 | 5, 3, 8, 360 | 2, 7 -> sorted 2 3 4 5 6 7 8 10 180 360.
    assert d.first_response == Durations(10, (6 + 7) / 2, 180)  # p90: the 9th of 10
    # After escalation: C3 180, C5 720 (09:00:05 -> 09:12:05), C8 360; C10 unanswered.
    assert d.agent_first_reply == Durations(3, 360, 720)
    # Resolution: 300, 600, 1200, 1200 | 1800, 180, 1800, 2400 | 120 -> the 5th of 9 is 1200, the 9th 2400.
    assert d.resolution_time == Durations(9, 1200, 2400)


def test_csat_sentiment_agents_and_accuracy(inst: Instance, data: Dataset) -> None:
    d = dashboard(inst.db, data.org_id, D1, D3)
    assert (d.csat.count, d.csat.average) == (3, (5 + 4 + 2) / 3)
    assert d.csat.distribution == {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1}

    assert d.sentiment.count == 11 and d.sentiment.average == pytest.approx(525 / 11)
    assert d.sentiment.per_day == [SentimentGroup("2030-03-04", 40.0, 4), SentimentGroup("2030-03-05", 46.25, 4),
                                   SentimentGroup("2030-03-06", 60.0, 3)]  # fmt: skip
    topics = [(g.key, g.count, round(g.average or 0, 4)) for g in d.sentiment.by_topic]
    assert topics == [(None, 6, round(355 / 6, 4)), ("Appointments", 3, 40.0), ("Billing", 2, 25.0)]
    segments = [(g.key, g.count, round(g.average or 0, 4)) for g in d.sentiment.by_segment]
    assert segments == [("anonymous", 7, round(335 / 7, 4)), ("low", 1, 50.0), ("medium", 1, 40.0),
                        ("high", 1, 45.0), ("top", 1, 55.0)]  # fmt: skip

    assert d.agents == [
        AgentFigures(data.agent_a, "agent of north", 2, 2, Durations(2, (180 + 360) / 2, 360), 2.0, 1),
        AgentFigures(data.agent_b, "Agent B", 1, 1, Durations(1, 720, 720), 4.0, 1),
    ]

    acc = d.ai_accuracy
    # Nine AI replies; five labelled: C1, C6, the C5 refusal correct; C2, C4 incorrect (C7's label was cleared).
    assert (acc.answers, acc.reviewed, acc.correct, acc.incorrect) == (9, 5, 3, 2)
    assert acc.accuracy == 3 / 5 and acc.reviewed_share == 5 / 9
    assert acc.by_band == [
        BandAccuracy("0-49", 2, 1, 1, 0, 1.0),  # C5 40 (reviewed), C10 20
        BandAccuracy("50-69", 0, 0, 0, 0, None),
        BandAccuracy("70-84", 1, 1, 0, 1, 0.0),  # C4 72
        BandAccuracy("85-94", 5, 2, 1, 1, 0.5),  # C1 92 ok, C2 88 wrong, C7 90, C9 86, C10 87
        BandAccuracy("95-100", 1, 1, 1, 0, 1.0),  # C6 96
    ]
    assert d.rolled_up_at is None  # rollup_days recomputes days; only the periodic run records a rollup


def test_a_range_takes_medians_over_every_value(inst: Instance, data: Dataset) -> None:
    # First responses by day: [4, 6, 10, 180] (median 8), [3, 5, 8, 360] (median 6.5), [2, 7] (median 4.5).
    assert dashboard(inst.db, data.org_id, D1, D1).first_response == Durations(4, 8, 180)
    assert dashboard(inst.db, data.org_id, D2, D2).first_response == Durations(4, 6.5, 360)
    # Days 1-2 together: 3 4 5 6 8 10 180 360 -> (6 + 8) / 2 = 7, not the mean of the daily medians (7.25).
    assert dashboard(inst.db, data.org_id, D1, D2).first_response == Durations(8, 7, 360)
    # Days 2-3: 2 3 5 7 8 360 -> 6.
    assert dashboard(inst.db, data.org_id, D2, D3).first_response == Durations(6, 6, 360)
    # Resolution, days 1-2: 180 300 600 1200 1200 1800 1800 2400 -> 1200; p90 is the 8th of 8.
    assert dashboard(inst.db, data.org_id, D1, D2).resolution_time == Durations(8, 1200, 2400)


def test_one_teams_figures(inst: Instance, seed: Seed, data: Dataset) -> None:
    d = dashboard(inst.db, data.org_id, D1, D3, team_id=data.team_id)  # the complaints desk: C3 and C8
    assert [v.conversations for v in d.volume] == [1, 1, 0]
    assert (d.resolution.conversations, d.resolution.agent_resolved, d.escalation.escalated) == (2, 2, 2)
    assert d.first_response == Durations(2, 270, 360)
    assert d.sentiment.average == 12.5 and d.ai_accuracy.answers == 0
    with pytest.raises(NotFound):
        dashboard(inst.db, seed.south, D1, D3, team_id=data.team_id)


def test_bad_ranges_are_refused(inst: Instance, data: Dataset) -> None:
    with pytest.raises(InvalidValue, match="after"):
        dashboard(inst.db, data.org_id, D3, D1)
    with pytest.raises(InvalidValue, match="367 days"):
        dashboard(inst.db, data.org_id, date(2029, 3, 3), D1)
    assert len(dashboard(inst.db, data.org_id, date(2029, 3, 4), D1).volume) == 366


def test_another_organisation_sees_none_of_it(inst: Instance, seed: Seed, data: Dataset) -> None:
    rollup_days(inst.db, seed.south, [D1, D2, D3])
    d = dashboard(inst.db, seed.south, D1, D3)
    assert d.resolution.conversations == 0 and d.ai_accuracy.answers == 0 and d.agents == []
    assert d.first_response == Durations(0, None, None) and d.csat.average is None
