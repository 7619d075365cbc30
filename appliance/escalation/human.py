"""Does a customer message ask for a person? English phrasings, kept precise on purpose: a false positive hands a
conversation the assistant could have answered to a queue, so a word like "human" or "representative" counts only
in a request ("talk to a human", "representative please"), never on its own in a sentence ("is a human body ...",
"I am my father's legal representative").

Sites add their own phrasings through a `customer_request` rule's extra phrases (a regular expression).
"""

from __future__ import annotations

import re

# Who a customer may ask for. "human" is not followed by words that make it something else (human resources).
_WHO = (
    r"(?:human(?!\s+(?:resources|rights|body|bodies|nature|error|papilloma))(?:\s+beings?)?|humans|person|agent|"
    r"someone|somebody|anyone|anybody|representative|rep|operator|staff(?:\s+member)?|employee|manager|supervisor|"
    r"advisor|adviser|(?:customer|client)\s+(?:service|support|care)(?:\s+(?:team|department|desk))?|support\s+team)"
)
_WHOM = (
    r"(?:(?:a|an|the|your|some|one\s+of\s+your)\s+)?(?:(?:real|actual|live|human|customer\s+service|support)\s+)?"
    rf"{_WHO}\b"
)

_REQUESTS = [
    # talk / speak / chat to or with someone: the base form only, so "I talked to an agent yesterday" is a report
    rf"\b(?:talk|speak|chat)\s+(?:to|with)\s+{_WHOM}",
    # transfer me to an operator, put me through to someone, connect me with a person
    rf"\b(?:connect|transfer|put|pass|hand|forward|redirect|send)\s+me\s+(?:through\s+|over\s+|in\s+touch\s+)?"
    rf"(?:to|with)\s+{_WHOM}",
    # get me a human, I want a real person, can I have an agent
    r"\b(?:get|give|find|want|need|have|request)\s+(?:me\s+)?(?:a|an|some)\s+(?:(?:real|actual|live)\s+)?"
    r"(?:human(?!\s+(?:resources|rights|body|nature|error))|person|agent|representative|operator)\b",
    # is there a human I can talk to
    rf"{_WHOM}\s+(?:i|we)\s+(?:can|could|may)\s+(?:talk|speak|chat)\b",
    # phrases that are a request wherever they stand
    r"\b(?:real|actual|live)\s+(?:person|human|agent)\b",
    r"\b(?:human|live)\s+agent\b",
    r"\b(?:customer|client)\s+(?:service|support|care)\s+(?:agent|representative|rep)\b",
]
_REQUEST = re.compile("|".join(f"(?:{p})" for p in _REQUESTS), re.IGNORECASE)

# The whole message is the request: "operator", "human please", "Agent!!"
_SHORT = re.compile(
    r"(?:please\s+)?(?:(?:a|an|real|live)\s+)?(?:human|agent|operator|representative|rep|person)"
    r"(?:\s+(?:please|pls|now))*",
    re.IGNORECASE,
)

# A request may be negated ("I don't need to talk to a human"): these, just before it in the same clause, cancel it.
_NEGATED = re.compile(r"\b(?:not|don'?t|doesn'?t|do\s+not|no\s+need|never|without)\b[^.,;:!?]*$", re.IGNORECASE)

# Refusing the assistant is asking for a person.
_NOT_A_BOT = re.compile(
    r"\b(?:don'?t|do\s+not|no\s+longer)\s+want\s+to\s+(?:talk|speak|chat)\s+(?:to|with)\s+"
    r"(?:a\s+|an\s+|the\s+|this\s+|your\s+)?(?:bot|robot|chatbot|machine|computer)\b",
    re.IGNORECASE,
)


def asks_for_human(text: str) -> bool:
    """True when the message asks to be handed to a person."""
    words = " ".join(re.sub(r"[^\w\s']", " ", text).split())
    if _SHORT.fullmatch(words):
        return True
    if _NOT_A_BOT.search(text):
        return True
    for match in _REQUEST.finditer(text):
        clause_before = text[max(0, match.start() - 40) : match.start()]
        if not _NEGATED.search(clause_before):
            return True
    return False
