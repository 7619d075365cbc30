"""The "asks for a person" detector: real requests in their many phrasings are caught, and sentences that merely
contain "human", "agent", "representative" or "operator" are not."""

from __future__ import annotations

import pytest

from appliance.escalation.human import asks_for_human

REQUESTS = [
    "I want to talk to a human",
    "can I speak to an agent?",
    "Let me speak to a person please",
    "I need to speak with someone about my bill",
    "get me a real person",
    "representative",
    "Representative please!",
    "connect me to a representative",
    "customer service agent please",
    "let me talk to your manager",
    "operator",
    "human please",
    "HUMAN, please!!",
    "transfer me to an operator",
    "is there a human I can talk to?",
    "I don't want to talk to a bot",
    "Put me in touch with a person",
    "can I get an agent",
    "I'd like to talk to customer service",
    "This is useless. Speak to someone NOW",
    "I want a human",
    "I don't want to talk to a bot, get me a live agent",
]

NOT_REQUESTS = [
    "is a human body able to survive a week without water?",
    "How do I contact human resources?",
    "What are your opening hours?",
    "I'm the legal representative of my father",
    "the operator of the MRI machine was very kind",
    "Can someone tell me the visiting hours?",
    "I spoke to an agent yesterday and he said it was fine",
    "How do I talk to my doctor about my results?",
    "I want to talk about my bill",
    "Can I talk to you about my account?",
    "Let me talk to my wife first and get back to you",
    "Human papillomavirus vaccine schedule",
    "I don't need to talk to a human, just tell me the hours",
    "How many agents work at the branch?",
    "Where is the customer service desk?",
    "The person at the desk was rude",
    "I talked to a person last week about this",
    "Is the human error rate of the lab tests published?",
    "",
]


@pytest.mark.parametrize("text", REQUESTS)
def test_requests_for_a_person_are_detected(text: str) -> None:
    assert asks_for_human(text) is True


@pytest.mark.parametrize("text", NOT_REQUESTS)
def test_sentences_that_only_mention_people_are_not_requests(text: str) -> None:
    assert asks_for_human(text) is False


def test_a_negated_request_does_not_cancel_a_later_one() -> None:
    assert asks_for_human("I don't need a refund. I need to speak to a person.") is True
    assert asks_for_human("No, I do not want to talk to an agent") is False
