"""The only words the engine writes itself: fixed, translatable templates, one table per language."""

from __future__ import annotations

DEFAULT_LANGUAGE = "en"

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "refusal.low_confidence": (
            "I'm sorry, I can't answer that reliably from our help articles. Would you like me to connect you with "
            "a member of our team?"
        ),
        "refusal.no_match": (
            "I'm sorry, I couldn't find anything about that in our help articles. Would you like me to connect you "
            "with a member of our team?"
        ),
        "refusal.prompt_attack": (
            "I'm sorry, I can't help with that request. If you have a question about our services, please ask it, "
            "or I can connect you with a member of our team."
        ),
    },
}
TEMPLATE_VERSION = "templates-v1"


def text(key: str, language: str = DEFAULT_LANGUAGE) -> str:
    table = STRINGS.get(language, STRINGS[DEFAULT_LANGUAGE])
    return table.get(key, STRINGS[DEFAULT_LANGUAGE][key])
