"""What the conversation flow asks of the escalation rules, as an interface: the rules live above this package
(`appliance.escalation`) and are handed in by the installation, so the dependency keeps pointing down.

On every customer message and every AI reply the flow gathers `Signals` and asks the `Triage` for its
`Decision`s, inside the write transaction that stores the message; the decisions are stored with the conversation
and audited with their reasons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from appliance.store import Connection

Action = Literal["escalate", "tag", "route_to_team"]


@dataclass(frozen=True)
class Signals:
    """What is known when a message arrives (role customer) or the assistant has replied (role ai)."""

    org_id: int
    conversation_id: int
    role: Literal["customer", "ai"]
    text: str
    sentiment: float | None = None  # 0 = certainly negative .. 100 = certainly positive
    sentiment_label: str | None = None
    topic: str | None = None
    customer_value: float = 0.0  # the customer's lifetime value
    confidence: int | None = None  # the AI reply's confidence (role ai)
    outcome: str | None = None  # answered | refused | blocked (role ai)
    failed_attempts: int = 0  # refusals, low-confidence replies and thumbs-down so far, this one included
    bot_turns: int = 0  # AI replies so far in this conversation, this one included
    human_requested: bool = False  # the customer pressed "talk to a human" (the text is checked separately)


@dataclass(frozen=True)
class Decision:
    trigger_type: str  # sentiment | keyword | topic | customer_value | confidence | repeated_failure |
    #                    customer_request | max_bot_turns
    action: Action
    reason: str  # a sentence for the agent and the audit trail
    rule_id: int | None = None  # None: a built-in trigger
    team_id: int | None = None
    tag: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)  # the values the decision was taken on


class Triage(Protocol):
    def decide(self, conn: Connection, signals: Signals) -> list[Decision]:
        """The decisions for these signals, in rule order. Tags come first; at most one escalate or route."""
        ...


class NoTriage:
    """No rules at all: only what the flow itself does (a refusal hands the conversation to a person)."""

    def decide(self, conn: Connection, signals: Signals) -> list[Decision]:
        return []
