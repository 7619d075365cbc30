"""What each trigger type means: its value parsed and checked when a rule is saved, and the test it puts to a
message's signals. A trigger answers with a sentence and the values it compared, or None when it does not fire."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from appliance.conversations.policy import Signals
from appliance.errors import InvalidValue
from appliance.escalation.human import asks_for_human

MAX_PATTERN_CHARS = 500
MAX_TOPIC_CHARS = 100
MAX_FAILURES = 1000

# Which messages a trigger looks at: the customer's, the assistant's replies, or both.
CUSTOMER = frozenset({"customer"})
AI = frozenset({"ai"})
BOTH = CUSTOMER | AI


@dataclass(frozen=True)
class Trigger:
    """A rule's trigger, parsed: `value` is the canonical text stored, `number` or `pattern` what is compared."""

    type: str
    value: str
    number: float = 0.0
    pattern: re.Pattern[str] | None = None

    @property
    def roles(self) -> frozenset[str]:
        return ROLES[self.type]

    def describe(self) -> str:
        """The condition, as the reason for a decision quotes it."""
        match self.type:
            case "sentiment":
                return f"sentiment ≤ {self.value}"
            case "keyword":
                return f"keyword /{self.value}/"
            case "topic":
                return f"topic = {self.value}"
            case "customer_value":
                return f"customer value ≥ {self.value}"
            case "confidence":
                return f"confidence < {self.value}"
            case "repeated_failure":
                return f"failed attempts ≥ {self.value}"
            case _:
                return "the customer asks for a person" + (f" or /{self.value}/" if self.value else "")

    def check(self, signals: Signals) -> tuple[str, dict[str, Any]] | None:
        """(what was seen, the inputs) when the trigger fires on these signals."""
        if signals.role not in self.roles:
            return None
        return _CHECKS[self.type](self, signals)


def _sentiment(t: Trigger, s: Signals) -> tuple[str, dict[str, Any]] | None:
    if s.sentiment is None or s.sentiment > t.number:
        return None
    return f"message sentiment {s.sentiment:.1f}", {"sentiment": s.sentiment, "threshold": t.number}


def _keyword(t: Trigger, s: Signals) -> tuple[str, dict[str, Any]] | None:
    assert t.pattern is not None
    found = t.pattern.search(s.text)
    if found is None:
        return None
    # Where it matched, not what: the inputs go to the audit trail, which never holds message text.
    return "the message matches", {"pattern": t.value, "match_start": found.start(), "match_end": found.end()}


def _topic(t: Trigger, s: Signals) -> tuple[str, dict[str, Any]] | None:
    if s.topic is None or s.topic.strip().casefold() != t.value.casefold():
        return None
    return f"conversation topic {s.topic}", {"topic": s.topic, "expected": t.value}


def _customer_value(t: Trigger, s: Signals) -> tuple[str, dict[str, Any]] | None:
    if s.customer_value < t.number:
        return None
    return f"lifetime value {format_number(s.customer_value)}", {"customer_value": s.customer_value,
                                                                 "threshold": t.number}  # fmt: skip


def _confidence(t: Trigger, s: Signals) -> tuple[str, dict[str, Any]] | None:
    if s.confidence is None or s.confidence >= t.number:
        return None
    return f"reply confidence {s.confidence}", {"confidence": s.confidence, "threshold": t.number}


def _repeated_failure(t: Trigger, s: Signals) -> tuple[str, dict[str, Any]] | None:
    if s.failed_attempts < t.number:
        return None
    return f"{s.failed_attempts} failed attempts", {"failed_attempts": s.failed_attempts, "threshold": int(t.number)}


def _customer_request(t: Trigger, s: Signals) -> tuple[str, dict[str, Any]] | None:
    inputs = {"button": s.human_requested, "detector": asks_for_human(s.text),
              "phrases": bool(t.pattern is not None and t.pattern.search(s.text))}  # fmt: skip
    if inputs["button"]:
        return "the customer pressed “talk to a human”", inputs
    if inputs["detector"]:
        return "the message asks for a person", inputs
    if inputs["phrases"]:
        return "the message matches the rule's phrases", inputs
    return None


_CHECKS: dict[str, Callable[[Trigger, Signals], tuple[str, dict[str, Any]] | None]] = {
    "sentiment": _sentiment,
    "keyword": _keyword,
    "topic": _topic,
    "customer_value": _customer_value,
    "confidence": _confidence,
    "repeated_failure": _repeated_failure,
    "customer_request": _customer_request,
}
ROLES: dict[str, frozenset[str]] = {
    "sentiment": CUSTOMER, "keyword": CUSTOMER, "topic": CUSTOMER, "customer_value": CUSTOMER,
    "confidence": AI, "repeated_failure": BOTH, "customer_request": CUSTOMER,
}  # fmt: skip
TRIGGER_TYPES = tuple(_CHECKS)


# -- parsing a trigger value -----------------------------------------------------------------------------------


def format_number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _number(raw: str, low: float, high: float, what: str) -> float:
    try:
        x = float(raw.strip())
    except ValueError:
        raise InvalidValue(f"trigger_value: {what} must be a number from {format_number(low)} to "
                           f"{format_number(high)}, not {raw.strip()[:40]!r}") from None  # fmt: skip
    if not math.isfinite(x) or not low <= x <= high:
        raise InvalidValue(f"trigger_value: {what} must be from {format_number(low)} to {format_number(high)}")
    return x


def _nested_repeat(items: Any, inside: bool) -> bool:
    """A repetition inside a repetition, as in (a+)+ or (\\w+\\s?)*: Python's regex engine may take exponential
    time on such a pattern, and a rule is evaluated inside the transaction that stores each message."""
    import re._constants as c  # sre internals: the parsed pattern is the only reliable way to see nesting

    for op, av in items:
        if op in (c.MAX_REPEAT, c.MIN_REPEAT):
            low, high, sub = av
            if inside and high == c.MAXREPEAT:
                return True
            if _nested_repeat(sub, inside or high > 1):
                return True
        elif op == c.BRANCH:
            if any(_nested_repeat(branch, inside) for branch in av[1]):
                return True
        elif op == c.SUBPATTERN:
            if _nested_repeat(av[3], inside):
                return True
        elif op in (c.ASSERT, c.ASSERT_NOT):
            if _nested_repeat(av[1], inside):
                return True
        elif op == c.GROUPREF_EXISTS:
            if any(branch is not None and _nested_repeat(branch, inside) for branch in av[1:]):
                return True
        elif op == c.POSSESSIVE_REPEAT:
            # never backtracks into itself: safe inside a repetition, but look at what it holds
            if _nested_repeat(av[2], False):
                return True
        elif op == c.ATOMIC_GROUP:
            if _nested_repeat(av, False):
                return True
    return False


def compile_pattern(raw: str, field: str = "trigger_value") -> re.Pattern[str]:
    if not raw.strip():
        raise InvalidValue(f"{field}: a keyword rule needs a regular expression")
    if len(raw) > MAX_PATTERN_CHARS:
        raise InvalidValue(f"{field}: a regular expression may have at most {MAX_PATTERN_CHARS} characters")
    try:
        import re._parser as parser

        parsed = parser.parse(raw, re.IGNORECASE)
        pattern = re.compile(raw, re.IGNORECASE)
    except re.error as exc:
        raise InvalidValue(f"{field}: not a valid regular expression: {exc}") from None
    if _nested_repeat(parsed, False):
        raise InvalidValue(f"{field}: a repetition inside a repetition (like (a+)+) can take exponential time; "
                           "repeat a plain group or a character class instead")  # fmt: skip
    return pattern


def parse(trigger_type: str, raw: str) -> Trigger:
    """The trigger, or InvalidValue naming the field and what is wrong."""
    match trigger_type:
        case "sentiment":
            x = _number(raw, 0, 100, "a sentiment score")
            return Trigger(trigger_type, format_number(x), x)
        case "confidence":
            x = _number(raw, 0, 100, "a confidence")
            return Trigger(trigger_type, format_number(x), x)
        case "customer_value":
            x = _number(raw, 0, 1e15, "a customer value")
            return Trigger(trigger_type, format_number(x), x)
        case "repeated_failure":
            x = _number(raw, 1, MAX_FAILURES, "a number of failed attempts")
            if not x.is_integer():
                raise InvalidValue("trigger_value: a number of failed attempts must be a whole number")
            return Trigger(trigger_type, format_number(x), x)
        case "topic":
            topic = " ".join(raw.split())
            if not topic or len(topic) > MAX_TOPIC_CHARS:
                raise InvalidValue(f"trigger_value: a topic needs 1 to {MAX_TOPIC_CHARS} characters")
            return Trigger(trigger_type, topic)
        case "keyword":
            return Trigger(trigger_type, raw, pattern=compile_pattern(raw))
        case "customer_request":
            # Optional: extra phrasings (a regular expression) besides the built-in detector.
            if not raw.strip():
                return Trigger(trigger_type, "")
            return Trigger(trigger_type, raw, pattern=compile_pattern(raw))
    raise InvalidValue(f"trigger_type: unknown trigger {trigger_type!r}; triggers are: {', '.join(TRIGGER_TYPES)}")
