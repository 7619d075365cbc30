"""Teams, agents and where an escalated conversation goes.

An escalated conversation is put in a team's queue (the rule's team, else the topic's team, else the default
team; none at all: the organisation-wide queue) and assigned at once to the least-loaded online agent of that team
who has room. When nobody is online, or the team is out of hours, it waits in the queue; it is assigned when an
agent comes online or a conversation of theirs ends, and every online agent of the team is alerted either way.
Nothing here forgets a conversation: the queue is a query over the conversations table.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from appliance import audit
from appliance.audit.events import Context, RoutingChanged
from appliance.errors import Conflict, InvalidValue, NotFound
from appliance.store import Connection, Database, now_iso

AVAILABILITY = ("online", "away", "offline")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"([01]\d|2[0-3]):[0-5]\d|24:00")
OPEN_STATUSES = ("active", "waiting", "escalated")


@dataclass(frozen=True)
class Team:
    id: int
    org_id: int
    name: str
    is_default: bool
    business_hours: dict[str, Any]
    out_of_hours_message: str
    members: list[int]


@dataclass(frozen=True)
class Agent:
    user_id: int
    name: str
    email: str
    availability: str
    capacity: int
    load: int  # open conversations assigned to them
    teams: list[int]


def check_hours(hours: dict[str, Any]) -> dict[str, Any]:
    """{"timezone": "Europe/Paris", "days": {"mon": [["09:00", "17:00"]], ...}}; {} means always open."""
    if not hours:
        return {}
    unknown = set(hours) - {"timezone", "days"}
    if unknown:
        raise InvalidValue(f"business_hours: unknown field(s) {', '.join(sorted(unknown))}")
    tz = hours.get("timezone", "UTC")
    try:
        ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidValue(f"business_hours.timezone: unknown time zone {tz!r}") from None
    days = hours.get("days", {})
    if not isinstance(days, dict):
        raise InvalidValue("business_hours.days must map mon..sun to lists of [start, end]")
    for day, spans in days.items():
        if day not in DAYS:
            raise InvalidValue(f"business_hours.days: {day!r} is not one of {', '.join(DAYS)}")
        if not isinstance(spans, list):
            raise InvalidValue(f"business_hours.days.{day} must be a list of [start, end]")
        for span in spans:
            if (not isinstance(span, list) or len(span) != 2 or not all(isinstance(t, str) and _HHMM.fullmatch(t)
                                                                         for t in span) or span[0] >= span[1]):  # fmt: skip
                raise InvalidValue(f"business_hours.days.{day}: {span!r} is not [\"HH:MM\", \"HH:MM\"] with start < end")
    return {"timezone": str(tz), "days": days}


def is_open(hours: dict[str, Any], at: datetime | None = None) -> bool:
    if not hours:
        return True
    local = (at or datetime.now(UTC)).astimezone(ZoneInfo(hours.get("timezone", "UTC")))
    now = local.strftime("%H:%M")
    return any(start <= now < end for start, end in hours.get("days", {}).get(DAYS[local.weekday()], []))


def _team(conn: Connection, row: Any) -> Team:
    members = [int(r[0]) for r in conn.execute("SELECT user_id FROM team_members WHERE team_id = ? ORDER BY user_id",
                                               (row["id"],))]  # fmt: skip
    return Team(int(row["id"]), int(row["org_id"]), row["name"], bool(row["is_default"]),
                json.loads(row["business_hours"]), row["out_of_hours_message"], members)  # fmt: skip


def list_teams(db: Database, org_id: int) -> list[Team]:
    with db.read() as conn:
        return [_team(conn, r) for r in conn.execute("SELECT * FROM teams WHERE org_id = ? ORDER BY name", (org_id,))]


def get_team(conn: Connection, org_id: int, team_id: int) -> Team:
    row = conn.execute("SELECT * FROM teams WHERE id = ? AND org_id = ?", (team_id, org_id)).fetchone()
    if row is None:
        raise NotFound(f"team {team_id} not found")
    return _team(conn, row)


def _check_members(conn: Connection, org_id: int, members: list[int]) -> None:
    for user_id in members:
        if conn.execute("SELECT 1 FROM memberships WHERE user_id = ? AND org_id = ?", (user_id, org_id)).fetchone() is None:
            raise InvalidValue(f"members: user {user_id} is not a member of this organisation")


def save_team(db: Database, ctx: Context, org_id: int, name: str, members: list[int], business_hours: dict[str, Any],
              out_of_hours_message: str, is_default: bool, team_id: int | None = None) -> Team:  # fmt: skip
    name = name.strip()
    if not 1 <= len(name) <= 80:
        raise InvalidValue("name must be 1-80 characters")
    if len(out_of_hours_message) > 1000:
        raise InvalidValue("out_of_hours_message is longer than 1000 characters")
    hours = check_hours(business_hours)
    with db.write() as conn:
        _check_members(conn, org_id, members)
        clash = conn.execute("SELECT id FROM teams WHERE org_id = ? AND name = ?", (org_id, name)).fetchone()
        if clash is not None and clash["id"] != team_id:
            raise Conflict(f"a team named {name!r} exists")
        if is_default:
            conn.execute("UPDATE teams SET is_default = 0 WHERE org_id = ?", (org_id,))
        values = (name, int(is_default), json.dumps(hours), out_of_hours_message)
        if team_id is None:
            new_id = conn.execute("INSERT INTO teams (org_id, name, is_default, business_hours, out_of_hours_message,"
                                  " created_at) VALUES (?, ?, ?, ?, ?, ?)", (org_id, *values, now_iso())).lastrowid  # fmt: skip
            assert new_id is not None
            team_id, change = int(new_id), "created"
        else:
            get_team(conn, org_id, team_id)
            conn.execute("UPDATE teams SET name = ?, is_default = ?, business_hours = ?, out_of_hours_message = ?"
                         " WHERE id = ?", (*values, team_id))  # fmt: skip
            conn.execute("DELETE FROM team_members WHERE team_id = ?", (team_id,))
            change = "updated"
        conn.executemany("INSERT INTO team_members (team_id, user_id) VALUES (?, ?)",
                         [(team_id, u) for u in sorted(set(members))])  # fmt: skip
        audit.record(conn, ctx, RoutingChanged("team", team_id, change, {"name": name, "members": sorted(set(members)),
                                                                          "is_default": is_default}))  # fmt: skip
        return get_team(conn, org_id, team_id)


def delete_team(db: Database, ctx: Context, org_id: int, team_id: int) -> None:
    with db.write() as conn:
        get_team(conn, org_id, team_id)
        used = conn.execute("SELECT count(*) FROM escalation_rules WHERE target_team_id = ?", (team_id,)).fetchone()[0]
        if used:
            raise Conflict(f"team {team_id} is the target of {used} escalation rule(s); change them first")
        # Its open conversations go back to the organisation-wide queue, never nowhere.
        conn.execute("UPDATE conversations SET team_id = NULL WHERE team_id = ?", (team_id,))
        conn.execute("UPDATE topics SET team_id = NULL WHERE team_id = ?", (team_id,))
        conn.execute("DELETE FROM team_members WHERE team_id = ?", (team_id,))
        conn.execute("DELETE FROM teams WHERE id = ?", (team_id,))
        audit.record(conn, ctx, RoutingChanged("team", team_id, "deleted", {}))


def _load(conn: Connection, user_id: int) -> int:
    return int(conn.execute(
        "SELECT count(*) FROM conversations WHERE assigned_agent_id = ? AND status IN ('active', 'waiting', 'escalated')",
        (user_id,),
    ).fetchone()[0])  # fmt: skip


def agent(conn: Connection, org_id: int, user_id: int) -> Agent:
    row = conn.execute(
        "SELECT u.id, u.name, u.email, a.availability, a.capacity FROM memberships m JOIN users u ON u.id = m.user_id"
        " LEFT JOIN agents a ON a.user_id = u.id AND a.org_id = m.org_id WHERE m.org_id = ? AND u.id = ?",
        (org_id, user_id),
    ).fetchone()  # fmt: skip
    if row is None:
        raise NotFound(f"agent {user_id} not found")
    teams = [int(r[0]) for r in conn.execute(
        "SELECT tm.team_id FROM team_members tm JOIN teams t ON t.id = tm.team_id WHERE tm.user_id = ? AND t.org_id = ?",
        (user_id, org_id))]  # fmt: skip
    return Agent(int(row["id"]), row["name"], row["email"], row["availability"] or "offline",
                 int(row["capacity"] if row["capacity"] is not None else 5), _load(conn, user_id), teams)  # fmt: skip


def list_agents(db: Database, org_id: int) -> list[Agent]:
    with db.read() as conn:
        ids = [int(r[0]) for r in conn.execute(
            "SELECT user_id FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.org_id = ? AND u.disabled = 0"
            " AND m.role IN ('agent', 'support_manager') ORDER BY user_id", (org_id,))]  # fmt: skip
        return [agent(conn, org_id, i) for i in ids]


def set_agent(conn: Connection, ctx: Context, org_id: int, user_id: int, availability: str | None,
              capacity: int | None) -> Agent:  # fmt: skip
    if availability is not None and availability not in AVAILABILITY:
        raise InvalidValue(f"availability must be one of {', '.join(AVAILABILITY)}")
    if capacity is not None and not 0 <= capacity <= 100:
        raise InvalidValue("capacity must be 0..100")
    current = agent(conn, org_id, user_id)
    conn.execute(
        "INSERT INTO agents (org_id, user_id, availability, capacity, updated_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT(org_id, user_id) DO UPDATE SET availability = excluded.availability,"
        " capacity = excluded.capacity, updated_at = excluded.updated_at",
        (org_id, user_id, availability or current.availability,
         current.capacity if capacity is None else capacity, now_iso()),
    )  # fmt: skip
    fields: dict[str, Any] = {k: v for k, v in (("availability", availability), ("capacity", capacity)) if v is not None}
    audit.record(conn, ctx, RoutingChanged("agent", user_id, "updated", fields))
    return agent(conn, org_id, user_id)


def team_for(conn: Connection, org_id: int, wanted: int | None, topic: str | None) -> int | None:
    """The team an escalation goes to: the rule's, else the topic's, else the default team, else none."""
    if wanted is not None:
        return wanted
    if topic:
        row = conn.execute("SELECT team_id FROM topics WHERE org_id = ? AND lower(name) = lower(?)",
                           (org_id, topic)).fetchone()  # fmt: skip
        if row is not None and row["team_id"] is not None:
            return int(row["team_id"])
    row = conn.execute("SELECT id FROM teams WHERE org_id = ? AND is_default = 1", (org_id,)).fetchone()
    return int(row["id"]) if row is not None else None


def online_agents(conn: Connection, org_id: int, team_id: int | None) -> list[Agent]:
    """Online agents of the team (of the organisation, for the organisation-wide queue), least loaded first."""
    if team_id is None:
        rows = conn.execute("SELECT a.user_id FROM agents a JOIN users u ON u.id = a.user_id JOIN memberships m"
                            " ON m.user_id = a.user_id AND m.org_id = a.org_id WHERE a.org_id = ?"
                            " AND a.availability = 'online' AND u.disabled = 0", (org_id,)).fetchall()  # fmt: skip
    else:
        rows = conn.execute("SELECT a.user_id FROM agents a JOIN team_members tm ON tm.user_id = a.user_id"
                            " JOIN users u ON u.id = a.user_id WHERE a.org_id = ? AND tm.team_id = ?"
                            " AND a.availability = 'online' AND u.disabled = 0", (org_id, team_id)).fetchall()  # fmt: skip
    agents = [agent(conn, org_id, int(r[0])) for r in rows]
    return sorted(agents, key=lambda a: (a.load / a.capacity if a.capacity else 1e9, a.load, a.user_id))


def pick_agent(conn: Connection, org_id: int, team_id: int | None) -> Agent | None:
    """The least-loaded online agent of the team with room for one more conversation."""
    for candidate in online_agents(conn, org_id, team_id):
        if candidate.load < candidate.capacity:
            return candidate
    return None


def team_open(conn: Connection, org_id: int, team_id: int | None, at: datetime | None = None) -> tuple[bool, str]:
    if team_id is None:
        return True, ""
    team = get_team(conn, org_id, team_id)
    return is_open(team.business_hours, at), team.out_of_hours_message


def queued(conn: Connection, org_id: int, team_ids: list[int] | None) -> list[int]:
    """Escalated conversations nobody has yet, oldest first (of these teams and the organisation-wide queue)."""
    sql = ("SELECT id FROM conversations WHERE org_id = ? AND status = 'escalated' AND assigned_agent_id IS NULL"
           " AND handled_by = 'ai'")  # fmt: skip
    params: list[Any] = [org_id]
    if team_ids is not None:
        sql += f" AND (team_id IS NULL OR team_id IN ({','.join('?' * len(team_ids))}))" if team_ids else " AND team_id IS NULL"
        params.extend(team_ids)
    return [int(r[0]) for r in conn.execute(sql + " ORDER BY escalated_at, id", params)]
