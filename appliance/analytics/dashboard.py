"""The dashboard: an organisation's figures over a range of UTC days (optionally one team's), added up from the
daily rollups. Counts and sums add; medians and the 90th percentile are taken over every duration of the range,
which the rows keep. What each figure means is in docs/analytics.md; which day a figure belongs to is in
`rollup`. Rates are None when their denominator is zero; so are averages and durations with nothing to measure.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date
from typing import Any

from appliance.analytics.definitions import CONFIDENCE_BANDS, VALUE_BANDS, ANONYMOUS, check_range, median, percentile
from appliance.analytics.rollup import DayRow, last_rollup
from appliance.conversations import routing
from appliance.store import Connection, Database


@dataclass(frozen=True)
class DayVolume:
    day: str
    conversations: int
    customer_messages: int


@dataclass(frozen=True)
class Durations:
    """Seconds: how many were measured, their median and 90th percentile (nearest rank)."""

    count: int
    median_s: float | None
    p90_s: float | None


@dataclass(frozen=True)
class Resolution:
    conversations: int  # started in the range
    resolved: int
    ai_resolved: int  # no person took part
    agent_resolved: int  # a person replied or held the conversation
    other_resolved: int  # handed to a person, then resolved without a person's reply
    open: int
    resolution_rate: float | None  # resolved / conversations
    ai_share: float | None  # ai_resolved / resolved
    agent_share: float | None  # agent_resolved / resolved


@dataclass(frozen=True)
class AssistantResolution:
    """Resolved by the assistant (docs/analytics.md): of the conversations started in the range."""

    counted: int  # the assistant answered with a cited source, or refused
    not_counted: int  # the rest: only small talk, notices, urgent guidance, or no reply at all
    resolved: int  # ended (resolved, closed or idle) with no person, no thumbs-down and no CSAT of 1-2
    person: int  # a person took part (escalated, taken over, assigned or replied)
    disliked: int  # no person, but a thumbs-down on an AI answer or a CSAT of 1-2
    open: int  # none of those, and not ended yet
    rate: float | None  # resolved / counted
    unanswered: int = 0  # no person, and only refusals: the assistant never answered


@dataclass(frozen=True)
class EscalationReason:
    trigger_type: str
    rule_id: int | None  # None: a built-in trigger (refusal, request for a person, limits, staff)
    rule_name: str | None
    count: int


@dataclass(frozen=True)
class Escalation:
    escalated: int
    rate: float | None  # escalated / conversations started
    unanswered: int  # escalated, no person has replied since
    reasons: list[EscalationReason]


@dataclass(frozen=True)
class Csat:
    count: int
    average: float | None
    distribution: dict[str, int]  # "1".."5"


@dataclass(frozen=True)
class SentimentGroup:
    key: str | None  # a day, a topic (None: no topic) or a segment
    average: float | None
    count: int


@dataclass(frozen=True)
class Sentiment:
    average: float | None
    count: int
    per_day: list[SentimentGroup]
    by_topic: list[SentimentGroup]
    by_segment: list[SentimentGroup]


@dataclass(frozen=True)
class AgentFigures:
    agent_id: int
    name: str | None
    taken: int
    resolved: int
    first_reply: Durations
    csat_average: float | None
    csat_count: int


@dataclass(frozen=True)
class BandAccuracy:
    band: str
    answers: int
    reviewed: int
    correct: int
    incorrect: int
    accuracy: float | None


@dataclass(frozen=True)
class Accuracy:
    answers: int  # AI replies given in the range (answered, refused or blocked)
    reviewed: int
    correct: int
    incorrect: int
    accuracy: float | None  # correct / reviewed
    reviewed_share: float | None  # reviewed / answers
    by_band: list[BandAccuracy]


@dataclass(frozen=True)
class Dashboard:
    org_id: int
    since: str
    until: str
    team_id: int | None
    volume: list[DayVolume]
    resolution: Resolution
    assistant_resolution: AssistantResolution
    escalation: Escalation
    first_response: Durations
    agent_first_reply: Durations
    resolution_time: Durations
    csat: Csat
    sentiment: Sentiment
    agents: list[AgentFigures]
    ai_accuracy: Accuracy
    rolled_up_at: str | None  # the last rollup's start: later changes are not in the figures yet

    def public(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _durations(values: list[float]) -> Durations:
    return Durations(len(values), median(values), percentile(values, 90))


def _group(key: str | None, total: list[float]) -> SentimentGroup:
    return SentimentGroup(key, _ratio(total[0], total[1]), int(total[1]))


def _read_rows(conn: Connection, org_id: int, since: date, until: date,
               team_id: int | None) -> dict[str, DayRow]:  # fmt: skip
    """The range's rows added up per day (all teams, or one)."""
    sql = "SELECT * FROM analytics_daily WHERE org_id = ? AND day >= ? AND day <= ?"
    args: list[Any] = [org_id, since.isoformat(), until.isoformat()]
    if team_id is not None:
        sql += " AND team_id = ?"
        args.append(team_id)
    per_day: dict[str, DayRow] = {}
    for row in conn.execute(sql + " ORDER BY day, team_id", args):
        per_day.setdefault(row["day"], DayRow()).add(DayRow.from_row(row))
    return per_day


def _resolution(total: DayRow) -> Resolution:
    other = total.resolved - total.ai_resolved - total.agent_resolved
    return Resolution(
        total.conversations, total.resolved, total.ai_resolved, total.agent_resolved, other,
        total.conversations - total.resolved, _ratio(total.resolved, total.conversations),
        _ratio(total.ai_resolved, total.resolved), _ratio(total.agent_resolved, total.resolved),
    )  # fmt: skip


def _assistant_resolution(total: DayRow) -> AssistantResolution:
    return AssistantResolution(
        total.assistant_counted, total.conversations - total.assistant_counted, total.assistant_resolved,
        total.assistant_person, total.assistant_disliked, total.assistant_open,
        _ratio(total.assistant_resolved, total.assistant_counted), total.assistant_unanswered,
    )  # fmt: skip


def _escalation(conn: Connection, org_id: int, total: DayRow) -> Escalation:
    names = {int(r["id"]): str(r["name"]) for r in
             conn.execute("SELECT id, name FROM escalation_rules WHERE org_id = ?", (org_id,))}  # fmt: skip
    reasons = []
    for key, count in total.escalation_reasons.items():
        trigger, _, rule = key.partition(":")
        rule_id = int(rule) if rule else None
        reasons.append(EscalationReason(trigger, rule_id, names.get(rule_id) if rule_id else None, count))
    reasons.sort(key=lambda r: (-r.count, r.trigger_type, r.rule_id or 0))
    return Escalation(total.escalated, _ratio(total.escalated, total.conversations), total.escalations_unanswered,
                      reasons)  # fmt: skip


def _sentiment(days: list[date], per_day: dict[str, DayRow], total: DayRow) -> Sentiment:
    daily = []
    for day in days:
        row = per_day.get(day.isoformat(), DayRow())
        daily.append(_group(day.isoformat(), [row.sentiment_sum, row.sentiment_count]))
    topics = sorted(total.sentiment_by_topic.items(), key=lambda kv: (-kv[1][1], kv[0]))
    order = [ANONYMOUS] + [name for _, name in VALUE_BANDS]
    segments = sorted(total.sentiment_by_segment.items(), key=lambda kv: order.index(kv[0]))
    return Sentiment(
        _ratio(total.sentiment_sum, total.sentiment_count), total.sentiment_count, daily,
        [_group(topic or None, value) for topic, value in topics], [_group(name, value) for name, value in segments],
    )  # fmt: skip


def _agents(conn: Connection, total: DayRow) -> list[AgentFigures]:
    out = []
    for key, figures in total.agents.items():
        user = conn.execute("SELECT name, email FROM users WHERE id = ?", (int(key),)).fetchone()
        name = None if user is None else (user["name"] or user["email"].split("@")[0])
        out.append(AgentFigures(int(key), name, figures["taken"], figures["resolved"],
                                _durations(figures["first_reply_s"]),
                                _ratio(figures["csat_sum"], figures["csat_count"]), figures["csat_count"]))  # fmt: skip
    return sorted(out, key=lambda a: (-a.taken, a.agent_id))


def _accuracy(total: DayRow) -> Accuracy:
    bands = []
    for _, band in CONFIDENCE_BANDS:
        answers, reviewed, correct = total.ai_by_band.get(band, [0, 0, 0])
        bands.append(BandAccuracy(band, answers, reviewed, correct, reviewed - correct, _ratio(correct, reviewed)))
    return Accuracy(
        total.ai_answers, total.ai_reviewed, total.ai_correct, total.ai_reviewed - total.ai_correct,
        _ratio(total.ai_correct, total.ai_reviewed), _ratio(total.ai_reviewed, total.ai_answers), bands,
    )  # fmt: skip


def dashboard(db: Database, org_id: int, since: date, until: date, team_id: int | None = None) -> Dashboard:
    days = check_range(since, until)
    with db.read() as conn:
        if team_id is not None:
            routing.get_team(conn, org_id, team_id)  # another organisation's team is not found
        per_day = _read_rows(conn, org_id, since, until, team_id)
        total = DayRow()
        for row in per_day.values():
            total.add(row)
        escalation = _escalation(conn, org_id, total)
        agents = _agents(conn, total)
        rolled_up_at = last_rollup(conn, org_id)
    volume = [DayVolume(d.isoformat(), per_day.get(d.isoformat(), DayRow()).conversations,
                        per_day.get(d.isoformat(), DayRow()).customer_messages) for d in days]  # fmt: skip
    csat = Csat(total.csat_count, _ratio(total.csat_sum, total.csat_count),
                {str(n + 1): c for n, c in enumerate(total.csat_counts)})  # fmt: skip
    return Dashboard(
        org_id, since.isoformat(), until.isoformat(), team_id, volume, _resolution(total),
        _assistant_resolution(total), escalation,
        _durations(total.first_response_s), _durations(total.agent_first_reply_s), _durations(total.resolution_s),
        csat, _sentiment(days, per_day, total), agents, _accuracy(total), rolled_up_at,
    )  # fmt: skip
