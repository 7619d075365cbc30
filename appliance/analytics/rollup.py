"""Daily rollups: each organisation's figures per UTC day and team, recomputed from the conversations, messages,
escalation decisions and reviews behind them, so that a dashboard over a range adds up rows instead of reading
months of messages. No customer text goes into a row.

The day a figure belongs to:
- a conversation, and everything about how it went (resolution, escalation and its reason, first response, first
  agent reply, resolution time, CSAT, the agent who handled it): the day it started, so that each rate's numerator
  and denominator describe the same conversations;
- customer messages and their sentiment: the day each was sent;
- AI replies and their reviews: the day the reply was given.
The team is the conversation's team (0: none, the assistant's alone). A day's rows are deleted and written again
whole, in one transaction, so recomputing gives the same rows.

Whether a conversation was resolved by the assistant also depends on the time of the run (it has ended once no
customer message came for `resolution_idle_hours`), so a day's rows are the same when recomputed at the same time.

`rollup_due` recomputes today, yesterday, the days that changes since the last run touched (a conversation's data
lies between its start and its last update), the days of conversations that have gone idle since the last run, and
the days marked stale (a review set or cleared). Days older than
the retention period are frozen: their conversations may have been purged, and the rows computed while they existed
are the record that is left.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any

from appliance import audit
from appliance.analytics.definitions import (
    ANSWER_OUTCOMES, DEFAULT_IDLE_HOURS, DISLIKED_CSAT, assistant_outcome, check_range, confidence_band, day_bounds,
    ended, segment,
)  # fmt: skip
from appliance.audit.events import AnalyticsRolledUp, Context
from appliance.errors import InvalidValue, NotFound
from appliance.store import Connection, Database, parse_iso

# A change is stamped just before its transaction begins; one committed while a run was reading is caught by the
# next run, which looks this far back before the last run's start.
OVERLAP = timedelta(minutes=5)
ESCALATING = ("escalate", "route_to_team")
CLOSED = ("resolved", "closed")
JSON_COLUMNS = (
    "first_response_s", "agent_first_reply_s", "resolution_s", "csat_counts", "sentiment_by_topic",
    "sentiment_by_segment", "escalation_reasons", "agents", "ai_by_band",
)  # fmt: skip


def _agent() -> dict[str, Any]:
    return {"taken": 0, "resolved": 0, "first_reply_s": [], "csat_sum": 0, "csat_count": 0}


@dataclass
class DayRow:
    """One row of analytics_daily (or the sum of several: `add` merges counts, sums, durations and maps)."""

    conversations: int = 0
    customer_messages: int = 0
    resolved: int = 0
    ai_resolved: int = 0
    agent_resolved: int = 0
    escalated: int = 0
    escalations_unanswered: int = 0
    first_response_s: list[float] = field(default_factory=list)
    agent_first_reply_s: list[float] = field(default_factory=list)
    resolution_s: list[float] = field(default_factory=list)
    csat_count: int = 0
    csat_sum: int = 0
    csat_counts: list[int] = field(default_factory=lambda: [0] * 5)
    sentiment_count: int = 0
    sentiment_sum: float = 0.0
    sentiment_by_topic: dict[str, list[float]] = field(default_factory=dict)  # topic ("" none): [sum, count]
    sentiment_by_segment: dict[str, list[float]] = field(default_factory=dict)  # segment: [sum, count]
    escalation_reasons: dict[str, int] = field(default_factory=dict)  # "trigger_type:rule_id" ("" built-in): n
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)  # user id: taken, resolved, first_reply_s, csat
    ai_answers: int = 0
    ai_reviewed: int = 0
    ai_correct: int = 0
    ai_by_band: dict[str, list[int]] = field(default_factory=dict)  # band: [answers, reviewed, correct]
    # Resolved by the assistant: the counted conversations, each in exactly one of the five after it.
    assistant_counted: int = 0
    assistant_resolved: int = 0
    assistant_person: int = 0
    assistant_disliked: int = 0
    assistant_open: int = 0
    assistant_unanswered: int = 0

    def empty(self) -> bool:
        return not (self.conversations or self.customer_messages or self.ai_answers)

    def add(self, other: DayRow) -> None:
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if f.name == "csat_counts":
                setattr(self, f.name, [a + b for a, b in zip(mine, theirs)])
            elif isinstance(mine, list):
                mine.extend(theirs)
            elif f.name == "agents":
                for agent_id, figures in theirs.items():
                    _add_agent(mine.setdefault(agent_id, _agent()), figures)
            elif isinstance(mine, dict):
                for key, value in theirs.items():
                    mine[key] = _add_values(mine.get(key), value)
            else:
                setattr(self, f.name, mine + theirs)

    def columns(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("first_response_s", "agent_first_reply_s", "resolution_s"):
                value = sorted(value)
            elif f.name == "agents":
                value = {k: {**v, "first_reply_s": sorted(v["first_reply_s"])} for k, v in sorted(value.items())}
            out[f.name] = json.dumps(value, sort_keys=True) if f.name in JSON_COLUMNS else value
        return out

    @classmethod
    def from_row(cls, row: Any) -> DayRow:
        return cls(**{f.name: json.loads(row[f.name]) if f.name in JSON_COLUMNS else row[f.name] for f in fields(cls)})


def _add_values(mine: Any, theirs: Any) -> Any:
    if mine is None:
        return list(theirs) if isinstance(theirs, list) else theirs
    if isinstance(mine, list):
        return [a + b for a, b in zip(mine, theirs)]
    return mine + theirs


def _add_agent(mine: dict[str, Any], theirs: dict[str, Any]) -> None:
    for key, value in theirs.items():
        if isinstance(value, list):
            mine[key].extend(value)
        else:
            mine[key] += value


@dataclass(frozen=True)
class Rollup:
    org_id: int
    days: list[str]  # recomputed
    frozen: list[str]  # asked for, older than the retention period: kept as they were
    rows: int
    rolled_up_at: str


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _seconds(start: str, end: str) -> float:
    return round((parse_iso(end) - parse_iso(start)).total_seconds(), 3)


# -- one conversation: what it contributes to the day it started ---------------------------------------------


def _first_response(messages: Sequence[Any]) -> float | None:
    """The customer's first message to the first reply after it, by the assistant (not a notice) or a person."""
    first = next((m for m in messages if m["role"] == "customer"), None)
    if first is None:
        return None
    for m in messages:
        if m["id"] > first["id"] and (m["role"] == "agent" or (m["role"] == "ai" and m["outcome"] != "notice")):
            return _seconds(first["created_at"], m["created_at"])
    return None


def _first_agent_reply(messages: Sequence[Any], since: str, sender: str | None = None) -> float | None:
    for m in messages:
        if m["role"] == "agent" and m["created_at"] >= since and (sender is None or m["sender"] == sender):
            return _seconds(since, m["created_at"])
    return None


def _escalation_reason(conv: Any, decisions: Sequence[Any]) -> str:
    """The decision that escalated it: taken in the escalation's own transaction (same timestamp); else the last
    escalating decision before it."""
    escalating = [d for d in decisions if d["action"] in ESCALATING and d["created_at"] <= conv["escalated_at"]]
    exact = [d for d in escalating if d["created_at"] == conv["escalated_at"]]
    chosen = exact[0] if exact else (escalating[-1] if escalating else None)
    if chosen is None:
        return "unknown:"
    return f"{chosen['trigger_type']}:{chosen['rule_id'] if chosen['rule_id'] is not None else ''}"


def _handling_agent(conv: Any, messages: Sequence[Any]) -> int | None:
    """The person who held the conversation last: its assignee, else the last agent who replied."""
    if conv["assigned_agent_id"] is not None:
        return int(conv["assigned_agent_id"])
    senders = [m["sender"] for m in messages if m["role"] == "agent" and (m["sender"] or "").startswith("user:")]
    return int(senders[-1].split(":", 1)[1]) if senders else None


def _count_agent(row: DayRow, conv: Any, messages: Sequence[Any], resolved: bool) -> None:
    agent_id = _handling_agent(conv, messages)
    if agent_id is None:
        return
    figures = row.agents.setdefault(str(agent_id), _agent())
    figures["taken"] += 1
    figures["resolved"] += int(resolved and conv["resolution_type"] == "agent_resolved")
    handoff = conv["escalated_at"] or conv["assigned_at"]
    reply = _first_agent_reply(messages, handoff, f"user:{agent_id}") if handoff else None
    if reply is not None:
        figures["first_reply_s"].append(reply)
    if conv["csat"] is not None:
        figures["csat_sum"] += int(conv["csat"])
        figures["csat_count"] += 1


def _assistant_outcome(conv: Any, messages: Sequence[Any], assigned: bool, now: datetime,
                       idle_hours: int) -> str | None:  # fmt: skip
    """Resolved by the assistant, or why not (definitions.assistant_outcome); None: not counted."""
    customer = [m["created_at"] for m in messages if m["role"] == "customer"]
    person = (assigned or conv["escalated_at"] is not None or conv["handled_by"] == "agent"
              or conv["assigned_agent_id"] is not None or any(m["role"] == "agent" for m in messages))  # fmt: skip
    disliked = conv["csat"] in DISLIKED_CSAT or any(m["role"] == "ai" and m["feedback"] == "down" for m in messages)
    has_ended = ended(conv["status"], parse_iso(customer[-1] if customer else conv["created_at"]), now, idle_hours)
    cites = any(m["role"] == "ai" and m["outcome"] == "answered" and m["cites"] for m in messages)
    refused = any(m["role"] == "ai" and m["outcome"] == "refused" for m in messages)
    return assistant_outcome(cites=cites, refused=refused, person=person, disliked=disliked, has_ended=has_ended)


def _count_assistant(row: DayRow, conv: Any, messages: Sequence[Any], assigned: bool, now: datetime,
                     idle_hours: int) -> None:  # fmt: skip
    outcome = _assistant_outcome(conv, messages, assigned, now, idle_hours)
    if outcome is None:
        return
    row.assistant_counted += 1
    name = f"assistant_{outcome}"
    setattr(row, name, getattr(row, name) + 1)


def _count_conversation(row: DayRow, conv: Any, messages: Sequence[Any], decisions: Sequence[Any]) -> None:
    row.conversations += 1
    first = _first_response(messages)
    if first is not None:
        row.first_response_s.append(first)
    resolved = conv["status"] in CLOSED and conv["resolved_at"] is not None
    if resolved:
        row.resolved += 1
        row.ai_resolved += int(conv["resolution_type"] == "ai_resolved")
        row.agent_resolved += int(conv["resolution_type"] == "agent_resolved")
        row.resolution_s.append(_seconds(conv["created_at"], conv["resolved_at"]))
    if conv["escalated_at"] is not None:
        row.escalated += 1
        reason = _escalation_reason(conv, decisions)
        row.escalation_reasons[reason] = row.escalation_reasons.get(reason, 0) + 1
        reply = _first_agent_reply(messages, conv["escalated_at"])
        if reply is None:
            row.escalations_unanswered += 1
        else:
            row.agent_first_reply_s.append(reply)
    if conv["csat"] is not None:
        row.csat_count += 1
        row.csat_sum += int(conv["csat"])
        row.csat_counts[int(conv["csat"]) - 1] += 1
    _count_agent(row, conv, messages, resolved)


# -- one day ---------------------------------------------------------------------------------------------


def _grouped(rows: Iterable[Any], key: str) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {}
    for r in rows:
        out.setdefault(int(r[key]), []).append(r)
    return out


MESSAGE_COLUMNS = "id, conversation_id, role, sender, outcome, feedback, sources != '[]' AS cites, created_at"


def _assigned(conn: Connection, cohort: str, args: Sequence[Any]) -> set[int]:
    """The cohort's conversations ever assigned to a person: a takeover released again, or an assignment taken
    back, leaves its mark only in the audit trail."""
    return {int(r[0].split(":", 1)[1]) for r in conn.execute(
        "SELECT DISTINCT target FROM audit_events WHERE action = 'conversation.assigned'"
        f" AND target IN (SELECT 'conversation:' || id FROM ({cohort}))", args)}  # fmt: skip


def conversation_outcome(conn: Connection, org_id: int, conversation_id: int, *, now: datetime | None = None,
                         idle_hours: int = DEFAULT_IDLE_HOURS) -> str | None:  # fmt: skip
    """One conversation against the resolution definition, as a rollup at `now` counts it: None (not counted) or
    one of ASSISTANT_OUTCOMES."""
    conv = conn.execute("SELECT * FROM conversations WHERE org_id = ? AND id = ?", (org_id, conversation_id)).fetchone()
    if conv is None:
        raise NotFound(f"conversation {conversation_id} not found")
    messages = conn.execute(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? ORDER BY id",
                            (conversation_id,)).fetchall()  # fmt: skip
    assigned = _assigned(conn, "SELECT id FROM conversations WHERE id = ?", (conversation_id,))
    return _assistant_outcome(conv, messages, bool(assigned), now or datetime.now(UTC), idle_hours)


def _conversations(conn: Connection, org_id: int, start: str, end: str, rows: dict[int, DayRow], now: datetime,
                   idle_hours: int) -> None:  # fmt: skip
    convs = conn.execute("SELECT * FROM conversations WHERE org_id = ? AND created_at >= ? AND created_at < ?",
                         (org_id, start, end)).fetchall()  # fmt: skip
    cohort = "SELECT id FROM conversations WHERE org_id = ? AND created_at >= ? AND created_at < ?"
    messages = _grouped(conn.execute(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id IN ({cohort}) ORDER BY id",
        (org_id, start, end)), "conversation_id")  # fmt: skip
    assigned = _assigned(conn, cohort, (org_id, start, end))
    decisions = _grouped(conn.execute(
        f"SELECT conversation_id, trigger_type, rule_id, action, created_at FROM escalation_decisions"
        f" WHERE conversation_id IN ({cohort}) ORDER BY id", (org_id, start, end)), "conversation_id")  # fmt: skip
    for conv in convs:
        row = rows.setdefault(int(conv["team_id"] or 0), DayRow())
        _count_conversation(row, conv, messages.get(int(conv["id"]), []), decisions.get(int(conv["id"]), []))
        _count_assistant(row, conv, messages.get(int(conv["id"]), []), int(conv["id"]) in assigned, now, idle_hours)


def _add_sentiment(groups: dict[str, list[float]], key: str, score: float) -> None:
    total = groups.setdefault(key, [0.0, 0])
    total[0] += score
    total[1] += 1


def _customer_messages(conn: Connection, org_id: int, start: str, end: str, rows: dict[int, DayRow]) -> None:
    found = conn.execute(
        "SELECT m.sentiment, c.team_id, c.topic, c.customer_id, cu.lifetime_value FROM messages m"
        " JOIN conversations c ON c.id = m.conversation_id LEFT JOIN customers cu ON cu.id = c.customer_id"
        " WHERE m.org_id = ? AND m.role = 'customer' AND m.created_at >= ? AND m.created_at < ?",
        (org_id, start, end),
    )  # fmt: skip
    for m in found:
        row = rows.setdefault(int(m["team_id"] or 0), DayRow())
        row.customer_messages += 1
        if m["sentiment"] is None:
            continue
        score = float(m["sentiment"])
        row.sentiment_count += 1
        row.sentiment_sum += score
        _add_sentiment(row.sentiment_by_topic, m["topic"] or "", score)
        value = None if m["customer_id"] is None else float(m["lifetime_value"] or 0)
        _add_sentiment(row.sentiment_by_segment, segment(value), score)


def _ai_answers(conn: Connection, org_id: int, start: str, end: str, rows: dict[int, DayRow]) -> None:
    marks = ", ".join("?" * len(ANSWER_OUTCOMES))
    found = conn.execute(
        "SELECT m.confidence, c.team_id, r.verdict FROM messages m JOIN conversations c ON c.id = m.conversation_id"
        " LEFT JOIN answer_reviews r ON r.message_id = m.id"
        f" WHERE m.org_id = ? AND m.role = 'ai' AND m.outcome IN ({marks}) AND m.created_at >= ? AND m.created_at < ?",
        (org_id, *ANSWER_OUTCOMES, start, end),
    )  # fmt: skip
    for m in found:
        row = rows.setdefault(int(m["team_id"] or 0), DayRow())
        band = row.ai_by_band.setdefault(confidence_band(m["confidence"]), [0, 0, 0])
        reviewed, correct = m["verdict"] is not None, m["verdict"] == "correct"
        row.ai_answers += 1
        row.ai_reviewed += int(reviewed)
        row.ai_correct += int(correct)
        band[0] += 1
        band[1] += int(reviewed)
        band[2] += int(correct)


def compute_day(conn: Connection, org_id: int, day: date, *, now: datetime | None = None,
                idle_hours: int = DEFAULT_IDLE_HOURS) -> dict[int, DayRow]:  # fmt: skip
    """The day's rows by team id, from the data as it stands at `now`."""
    start, end = day_bounds(day)
    rows: dict[int, DayRow] = {}
    _conversations(conn, org_id, start, end, rows, now or datetime.now(UTC), idle_hours)
    _customer_messages(conn, org_id, start, end, rows)
    _ai_answers(conn, org_id, start, end, rows)
    return {team: row for team, row in rows.items() if not row.empty()}


def recompute_day(conn: Connection, org_id: int, day: date, computed_at: str, *,
                  idle_hours: int = DEFAULT_IDLE_HOURS) -> int:  # fmt: skip
    """Replace the day's rows as they stand at computed_at (call inside a write transaction). Returns how many rows
    it wrote."""
    rows = compute_day(conn, org_id, day, now=parse_iso(computed_at), idle_hours=idle_hours)
    conn.execute("DELETE FROM analytics_daily WHERE org_id = ? AND day = ?", (org_id, day.isoformat()))
    for team_id, row in sorted(rows.items()):
        columns = {"org_id": org_id, "day": day.isoformat(), "team_id": team_id, **row.columns(),
                   "computed_at": computed_at}  # fmt: skip
        conn.execute(f"INSERT INTO analytics_daily ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                     list(columns.values()))  # fmt: skip
    conn.execute("DELETE FROM analytics_stale WHERE org_id = ? AND day = ?", (org_id, day.isoformat()))
    return len(rows)


def mark_stale(conn: Connection, org_id: int, day: str, now: str) -> None:
    """Ask the next run to recompute a day whose change leaves no later timestamp behind."""
    conn.execute("INSERT INTO analytics_stale (org_id, day, marked_at) VALUES (?, ?, ?) ON CONFLICT (org_id, day)"
                 " DO UPDATE SET marked_at = excluded.marked_at", (org_id, day, now))  # fmt: skip


# -- which days, and the runs ----------------------------------------------------------------------------


def _span(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _gone_idle(conn: Connection, org_id: int, since: str, now: datetime, idle_hours: int) -> set[date]:
    """The start days of conversations whose idle time ran out since the last run: nothing about them changed, yet
    they may now be resolved by the assistant. Only those that can be (open, no person, a cited answer) are read;
    their last change is at or after their last customer message, so none older than idle_hours before `since`."""
    idle = timedelta(hours=idle_hours)
    after = "" if not since else _stamp(parse_iso(since) - idle)
    found = conn.execute(
        "SELECT c.created_at, (SELECT max(m.created_at) FROM messages m WHERE m.conversation_id = c.id"
        " AND m.role = 'customer') AS last_customer FROM conversations c"
        " WHERE c.org_id = ? AND c.updated_at > ? AND c.status NOT IN ('resolved', 'closed')"
        " AND c.escalated_at IS NULL AND c.handled_by = 'ai' AND EXISTS (SELECT 1 FROM messages a"
        " WHERE a.conversation_id = c.id AND a.role = 'ai' AND a.outcome = 'answered' AND a.sources != '[]')",
        (org_id, after),
    )  # fmt: skip
    out = set()
    for created_at, last_customer in found:
        runs_out = parse_iso(last_customer or created_at) + idle
        if (not since or runs_out > parse_iso(since)) and runs_out <= now:
            out.add(parse_iso(created_at).date())
    return out


def due_days(db: Database, org_id: int, now: datetime, idle_hours: int = DEFAULT_IDLE_HOURS) -> list[date]:
    """Today, yesterday, the days touched by changes since the last run (less OVERLAP), the days of conversations
    that went idle since then, and the stale days."""
    today = now.astimezone(UTC).date()
    days = {today, today - timedelta(days=1)}
    with db.read() as conn:
        state = conn.execute("SELECT rolled_up_at FROM analytics_state WHERE org_id = ?", (org_id,)).fetchone()
        since = "" if state is None else _stamp(parse_iso(state[0]) - OVERLAP)
        # A changed conversation touches the day it started (its outcome, CSAT included) and the days of its
        # messages, all between its start and its last update (a team change moves every one of them).
        changed = conn.execute(
            "SELECT substr(created_at, 1, 10), substr(updated_at, 1, 10) FROM conversations"
            " WHERE org_id = ? AND (updated_at > ? OR csat_at > ?)", (org_id, since, since),
        ).fetchall()  # fmt: skip
        stale = [r[0] for r in conn.execute("SELECT day FROM analytics_stale WHERE org_id = ?", (org_id,))]
        idle = _gone_idle(conn, org_id, since, now, idle_hours)
    for first, last in changed:
        days.update(_span(date.fromisoformat(first), min(date.fromisoformat(last), today)))
    days.update(idle)
    days.update(date.fromisoformat(d) for d in stale)
    return sorted(d for d in days if d <= today)


def _frozen(day: date, now: datetime, retention_days: int | None) -> bool:
    """A day that began before the retention cutoff may have lost conversations to a purge."""
    if retention_days is None:
        return False
    return day <= (now - timedelta(days=retention_days)).astimezone(UTC).date()


def rollup_days(db: Database, org_id: int, days: Iterable[date], *, now: datetime | None = None,
                retention_days: int | None = None, idle_hours: int = DEFAULT_IDLE_HOURS) -> Rollup:  # fmt: skip
    """Recompute these days (each in its own transaction), leaving frozen ones as they are."""
    now = now or datetime.now(UTC)
    stamp = _stamp(now)
    done, frozen, written = [], [], 0
    for day in sorted(set(days)):
        if _frozen(day, now, retention_days):
            frozen.append(day.isoformat())
            continue
        with db.write() as conn:
            written += recompute_day(conn, org_id, day, stamp, idle_hours=idle_hours)
        done.append(day.isoformat())
    return Rollup(org_id, done, frozen, written, stamp)


def rollup_due(db: Database, org_id: int, *, now: datetime | None = None, retention_days: int | None = None,
               extra: Iterable[date] = (), idle_hours: int = DEFAULT_IDLE_HOURS) -> Rollup:  # fmt: skip
    """The periodic run for one organisation (and `extra` days asked for): recompute what is due, then record the
    run's start as the point later changes are looked for from."""
    now = now or datetime.now(UTC)
    done = rollup_days(db, org_id, [*due_days(db, org_id, now, idle_hours), *extra], now=now,
                       retention_days=retention_days, idle_hours=idle_hours)  # fmt: skip
    with db.write() as conn:
        conn.execute("INSERT INTO analytics_state (org_id, rolled_up_at) VALUES (?, ?) ON CONFLICT (org_id)"
                     " DO UPDATE SET rolled_up_at = excluded.rolled_up_at", (org_id, done.rolled_up_at))  # fmt: skip
    return done


def rollup_all(db: Database, *, now: datetime | None = None, retention_days: int | None = None,
               idle_hours: int = DEFAULT_IDLE_HOURS) -> list[Rollup]:  # fmt: skip
    """Every organisation's periodic run (what the background task calls every 15 minutes)."""
    with db.read() as conn:
        org_ids = [int(r[0]) for r in conn.execute("SELECT id FROM orgs ORDER BY id")]
    return [rollup_due(db, org_id, now=now, retention_days=retention_days, idle_hours=idle_hours) for org_id in org_ids]


def last_rollup(conn: Connection, org_id: int) -> str | None:
    row = conn.execute("SELECT rolled_up_at FROM analytics_state WHERE org_id = ?", (org_id,)).fetchone()
    return None if row is None else str(row[0])


def rollup_now(db: Database, ctx: Context, org_id: int, *, since: date | None = None, until: date | None = None,
               retention_days: int | None = None, now: datetime | None = None,
               idle_hours: int = DEFAULT_IDLE_HOURS) -> Rollup:  # fmt: skip
    """A person's "recompute now": what is due, and the days from since to until if asked for. Audited."""
    if (since is None) != (until is None):
        raise InvalidValue("give both since and until, or neither")
    extra = check_range(since, until) if since is not None and until is not None else []
    done = rollup_due(db, org_id, now=now, retention_days=retention_days, extra=extra, idle_hours=idle_hours)
    audit.record_alone(db, ctx, AnalyticsRolledUp(done.days))
    return done
