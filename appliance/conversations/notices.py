"""What the service itself tells a customer about the people behind it: whether someone is coming, when the team
is open, and that a message left now is seen first thing. Honest by construction: the text depends on whether an
agent of the conversation's team is really online and the team is in its hours, never "a person will join shortly"
when nobody can.
"""

from __future__ import annotations

from typing import Any

from appliance.conversations import routing
from appliance.store import Connection

STRINGS: dict[str, str] = {
    "joining": "A member of our team will join you shortly.",
    "busy": "Everyone in our team is busy right now. You are in the queue, and a person will join you as soon as "
            "one is free.",
    "offline": "Nobody from our team is online right now.",
    "closed": "Our team is not available right now.",
    "hours": "Our opening hours are {hours}.",
    "leave": "You can leave a message here: an agent will see it first thing, and the conversation stays open.",
    # A reply sent while the conversation waits for a person (answer_while_waiting).
    "still_coming": "A person is still coming to help you.",
    "still_queued": "Your conversation is still waiting for our team.",
    "waiting_refusal": "A person is still coming; I couldn't answer that myself, so they will see your message.",
    "waiting_refusal_away": "Your message is saved on the conversation; an agent will see it first thing.",
}
_DAY_NAMES = {"mon": "Mon", "tue": "Tue", "wed": "Wed", "thu": "Thu", "fri": "Fri", "sat": "Sat", "sun": "Sun"}


def hours_text(hours: dict[str, Any]) -> str:
    """A team's business hours in words: "Mon-Fri 09:00-17:00, Sat 10:00-13:00 (Europe/Paris time)"; "" when the
    team has no hours (always open) or is never open."""
    days = hours.get("days") or {}
    runs: list[tuple[list[str], str]] = []
    for day in routing.DAYS:
        spans = days.get(day) or []
        if not spans:
            continue
        text = ", ".join(f"{start}-{end}" for start, end in spans)
        previous = routing.DAYS[routing.DAYS.index(day) - 1] if day != "mon" else None
        if runs and runs[-1][1] == text and previous is not None and previous == runs[-1][0][-1]:
            runs[-1][0].append(day)
        else:
            runs.append(([day], text))
    if not runs:
        return ""
    parts = [(_DAY_NAMES[d[0]] if len(d) == 1 else f"{_DAY_NAMES[d[0]]}-{_DAY_NAMES[d[-1]]}") + f" {t}" for d, t in runs]
    return f"{', '.join(parts)} ({hours.get('timezone', 'UTC')} time)"


def availability(conn: Connection, org_id: int, team_id: int | None) -> tuple[bool, bool, str, str]:
    """(open, someone online, the team's out-of-hours message, its hours in words) for the conversation's team."""
    is_open, closed_message = routing.team_open(conn, org_id, team_id)
    hours = routing.get_team(conn, org_id, team_id).business_hours if team_id is not None else {}
    return is_open, bool(routing.online_agents(conn, org_id, team_id)), closed_message, hours_text(hours)


def escalated(conn: Connection, org_id: int, team_id: int | None, assigned: bool) -> str:
    """What the customer is told when their conversation goes to a person."""
    is_open, online, closed_message, hours = availability(conn, org_id, team_id)
    if assigned:  # an online agent with room has it now
        return STRINGS["joining"]
    if is_open and online:
        return STRINGS["busy"]
    lead = (closed_message.strip() or STRINGS["closed"]) if not is_open else STRINGS["offline"]
    parts = [lead]
    if hours:
        parts.append(STRINGS["hours"].format(hours=hours))
    parts.append(STRINGS["leave"])
    return " ".join(parts)


def someone_coming(conn: Connection, org_id: int, team_id: int | None) -> bool:
    is_open, online, _, _ = availability(conn, org_id, team_id)
    return is_open and online
