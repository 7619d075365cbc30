"""Follow-up questions ("and on the iPhone?", "how long does it take?") become standalone queries, without a model:
a question that leans on the previous one (it opens with a connective, refers back with a pronoun, or has too few
words of its own) is joined to the previous standalone query. The result is recorded with the answer."""

from __future__ import annotations

import re
from collections.abc import Sequence

from appliance.answering.text import content_terms

# Openings that continue the previous question.
_CONNECTIVE = re.compile(
    r"^\s*(?:and|also|or|but|so|then|what about|how about|what if|same for|same with|and what about|and how about)\b[\s,]*",
    re.IGNORECASE,
)
_PRONOUN = re.compile(r"\b(?:it|its|this|that|these|those|they|them|their|there|one|ones)\b", re.IGNORECASE)
MIN_OWN_TERMS = 3  # a question with fewer content words of its own, and a pronoun, leans on the previous one
MIN_TERMS = 2  # fewer than this: always a follow-up when there is a previous question


def is_follow_up(question: str) -> bool:
    terms = content_terms(question)
    if _CONNECTIVE.match(question):
        return True
    if len(terms) < MIN_TERMS:
        return True
    return len(terms) < MIN_OWN_TERMS and bool(_PRONOUN.search(question))


def resolve(question: str, previous: Sequence[str]) -> str:
    """The standalone query for `question` given the standalone queries of the earlier customer questions of the
    conversation (oldest first)."""
    question = " ".join(question.split())
    if not previous or not is_follow_up(question):
        return question
    rest = _CONNECTIVE.sub("", question).strip()
    base = previous[-1].rstrip()
    return f"{base} {rest}".strip() if rest else base
