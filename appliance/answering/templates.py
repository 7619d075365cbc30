"""The only words the engine writes itself: fixed, translatable templates, one table per language."""

from __future__ import annotations

DEFAULT_LANGUAGE = "en"

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "refusal.low_confidence": (
            "I'm sorry, I can't answer that reliably from our help articles. Could you ask it another way, perhaps "
            "with a little more detail? You can also ask to talk to a person."
        ),
        "refusal.no_match": (
            "I'm sorry, I couldn't find anything about that in our help articles. Could you ask it another way, "
            "perhaps with a little more detail? You can also ask to talk to a person."
        ),
        "refusal.suggestions": "These articles may help:",
        "refusal.prompt_attack": (
            "I'm sorry, I can't help with that request. If you have a question about our services, please ask it, "
            "or I can connect you with a member of our team."
        ),
        # Small talk (appliance/answering/smalltalk.py), by kind.
        "smalltalk.greeting": "Hello! I'm the virtual assistant of our help centre. What can I help you with?",
        "smalltalk.wellbeing": "I'm well, thank you for asking! What can I help you with today?",
        "smalltalk.thanks": "You're welcome! Is there anything else I can help you with?",
        "smalltalk.goodbye": "Thank you for getting in touch. Goodbye, and take care!",
        "smalltalk.bot": (
            "I'm an automated assistant: I answer from our help articles and show the article each answer comes "
            "from. If you would rather talk to a person, press \"Talk to a human\" or just ask."
        ),
        "smalltalk.ack": "Is there anything else I can help you with?",
        # Urgent messages (appliance/answering/urgent.py): the lead, then the emergencies article's passage.
        "urgent.lead": (
            "**This may be an emergency. If you or someone else is in danger, call your local emergency number "
            "now.** This chat cannot send help. Here is our guidance:"
        ),
        "urgent.no_article": (
            "**This may be an emergency. If you or someone else is in danger, call your local emergency number "
            "now.** This chat cannot send help."
        ),
        "urgent.handover": "I have also asked a member of our team to look at this conversation.",
    },
}
TEMPLATE_VERSION = "templates-v2"


def text(key: str, language: str = DEFAULT_LANGUAGE) -> str:
    table = STRINGS.get(language, STRINGS[DEFAULT_LANGUAGE])
    return table.get(key, STRINGS[DEFAULT_LANGUAGE][key])
