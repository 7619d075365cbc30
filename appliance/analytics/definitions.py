"""What the figures are made of, defined once: the customer segments (lifetime value bands), the confidence bands,
which AI messages are answers, when a conversation is resolved by the assistant, the date ranges a dashboard may ask
for, and how medians and percentiles are taken.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime, timedelta

from appliance.config import Settings
from appliance.errors import InvalidValue

# Customer segments by lifetime value (the value an integration sets: PUT /api/customers/{id}/value), lower bound
# included. A message from a visitor with no customer record is in the segment "anonymous".
VALUE_BANDS: tuple[tuple[float, str], ...] = ((0, "low"), (1_000, "medium"), (10_000, "high"), (100_000, "top"))
ANONYMOUS = "anonymous"

# Confidence bands (0-100), lower bound included. The default answer threshold (85) starts a band, so answers and
# refusals never share one at the default.
CONFIDENCE_BANDS: tuple[tuple[int, str], ...] = (
    (0, "0-49"), (50, "50-69"), (70, "70-84"), (85, "85-94"), (95, "95-100"),
)  # fmt: skip

# AI messages that the answer engine produced (a notice, such as the out-of-hours message, is not an answer).
ANSWER_OUTCOMES = ("answered", "refused", "blocked")

MAX_RANGE_DAYS = 366

# Resolved by the assistant (docs/analytics.md#resolved-by-the-assistant). A conversation is counted when the
# customer asked the assistant a question: it gave at least one answer that cites a source or one refusal (small
# talk, notices and urgent guidance alone are not a question of the help centre). Of the counted, each is in exactly
# one of these, checked in order; "unanswered": no person, and no answer that cites a source, only refusals.
ASSISTANT_OUTCOMES = ("person", "disliked", "unanswered", "open", "resolved")
DISLIKED_CSAT = (1, 2)  # a CSAT this low says the conversation was not resolved, whatever its status
# The setting's own default (declared once, in config), for callers that are not handed the settings, such as tests.
DEFAULT_IDLE_HOURS: int = Settings.model_fields["resolution_idle_hours"].default


def segment(lifetime_value: float | None) -> str:
    if lifetime_value is None:
        return ANONYMOUS
    name = VALUE_BANDS[0][1]
    for lower, band in VALUE_BANDS:
        if lifetime_value >= lower:
            name = band
    return name


def confidence_band(confidence: int | None) -> str:
    name = CONFIDENCE_BANDS[0][1]
    for lower, band in CONFIDENCE_BANDS:
        if (confidence or 0) >= lower:
            name = band
    return name


def band_bounds(name: str) -> tuple[int, int]:
    """A confidence band's range: lower bound included, upper excluded."""
    lowers = [lower for lower, _ in CONFIDENCE_BANDS] + [101]
    for n, (lower, band) in enumerate(CONFIDENCE_BANDS):
        if band == name:
            return lower, lowers[n + 1]
    raise InvalidValue(f"band must be one of {', '.join(band for _, band in CONFIDENCE_BANDS)}")


def ended(status: str, last_customer_at: datetime, now: datetime, idle_hours: int) -> bool:
    """Resolved or closed, or no customer message for idle_hours (the start counts when there is none)."""
    return status in ("resolved", "closed") or now - last_customer_at >= timedelta(hours=idle_hours)


def assistant_outcome(*, cites: bool, refused: bool, person: bool, disliked: bool, has_ended: bool) -> str | None:
    """One conversation against the definition: None when it is not counted, else one of ASSISTANT_OUTCOMES.
    cites: an AI answer that cites a source; refused: a refusal; person: escalated, taken over, assigned or replied
    to by an agent, ever; disliked: a thumbs-down on any AI answer in it, or a CSAT in DISLIKED_CSAT."""
    if not cites and not refused:
        return None
    if person:
        return "person"
    if disliked:
        return "disliked"
    if not cites:
        return "unanswered"
    return "resolved" if has_ended else "open"


def check_range(since: date, until: date) -> list[date]:
    """The days from since to until, both included; refused when reversed or longer than MAX_RANGE_DAYS."""
    if since > until:
        raise InvalidValue(f"since ({since}) is after until ({until})")
    count = (until - since).days + 1
    if count > MAX_RANGE_DAYS:
        raise InvalidValue(f"the range is {count} days; at most {MAX_RANGE_DAYS} days may be asked for at once")
    return [since + timedelta(days=n) for n in range(count)]


def day_bounds(day: date) -> tuple[str, str]:
    """The day as a half-open range of stored timestamps (fixed-width ISO text, so text order is time order)."""
    return day.isoformat(), (day + timedelta(days=1)).isoformat()


def median(values: Sequence[float]) -> float | None:
    """The middle value of the sorted values (the mean of the two middle ones when there is an even number)."""
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest rank: the smallest value with at least p percent of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]
