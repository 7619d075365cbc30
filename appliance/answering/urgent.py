"""Does a customer message describe an emergency or a risk to someone's safety (chest pain, not breathing, a
collapse, stroke signs, self-harm or suicide, an overdose, severe bleeding, a seizure, a severe allergic reaction)?
Then the engine answers with the organisation's emergency guidance at once and the conversation reaches a person as
urgent, whatever the confidence gate says.

Deterministic and erring on the side of safety: negations ("I'm not suicidal") and other people ("my dad collapsed")
count. Two kinds of phrase:
- **always urgent**: self-harm and suicide, an overdose, someone not breathing or unconscious, "this is an
  emergency", "call an ambulance", and every phrase the organisation adds (`emergency_terms`);
- **urgent unless informational**: the other conditions. "What are the signs of a stroke?" or "what causes chest
  pain" is a question about a condition, not someone having it: a message shaped as a question (it opens with a
  question word or ends with "?") that names nobody (no I, my, we, he, she, someone, my son…) is left to the engine.
bench/urgent.py measures recall on urgent messages and false positives on non-emergency question sets.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

_ALWAYS = [
    # self-harm and suicide, in the words people use
    r"kill(?:ing)? (?:my ?self|me)", r"suicid\w*", r"end(?:ing)? (?:it all|my (?:own )?life|things)",
    r"take (?:my (?:own )?life|my own life)", r"(?:want|wanna|going|ready) to die", r"better off dead",
    r"(?:don'?t|do not) want to (?:live|be alive|wake up)", r"(?:hurting|harming|cutting|hurt|harm|cut) my ?self",
    r"self[ -]?harm\w*", r"no reason to live",
    # overdose and poisoning
    r"overdos\w*", r"took (?:too many|a lot of|all (?:my|the)) (?:pills|tablets|meds|medication)",
    r"swallowed (?:a bottle|too many|bleach|poison)", r"poisoned",
    # not breathing, unconscious
    r"not breathing", r"stopped breathing", r"unconscious", r"unresponsive", r"won'?t wake up", r"not waking up",
    # the person says so
    r"(?:this|it)(?: is|'s) an emergency", r"medical emergency", r"call (?:an |the )?ambulance", r"need an ambulance",
]
_UNLESS_INFORMATIONAL = [
    # chest pain and heart attack
    r"chest (?:pain|pains|tightness|pressure|hurts|is hurting|feels tight|is tight)",
    r"pain in (?:my|his|her|the) chest", r"heart attack", r"crushing pain",
    # breathing
    r"(?:can'?t|cannot|can not|unable to|struggling to|hard to|trouble|difficulty|difficult to|hardly)"
    r" (?:breathe|breath|breathing)",
    r"short(?:ness)? of breath", r"choking", r"gasping",
    # collapse, fainting
    r"collaps(?:ed|ing)", r"passed out", r"fainted", r"blacked out",
    # stroke signs
    r"(?:having|had|having had) a stroke", r"face (?:is )?droop\w*", r"drooping face",
    r"slurr(?:ed|ing) (?:speech|words|my words|his words|her words)", r"signs of (?:a )?stroke", r"stroke symptoms",
    r"(?:arm|leg|side of (?:my|his|her) (?:face|body)) (?:is |went |has gone )?(?:numb|weak|limp)",
    # bleeding
    r"bleeding (?:heavily|badly|a lot|profusely|won'?t stop|will not stop|everywhere)",
    r"(?:won'?t|will not|can'?t|cannot) stop (?:the )?bleeding", r"severe bleeding", r"lots of blood",
    r"losing (?:a lot of )?blood", r"coughing (?:up )?blood", r"vomiting blood",
    # seizure
    r"(?:having|had|is having) (?:a )?(?:seizure|fit|convulsion)s?", r"seizing", r"convuls\w*",
    # severe allergic reaction
    r"anaphyla\w*", r"(?:severe |bad |serious )?allergic reaction", r"epi ?pen",
    r"(?:throat|tongue|lips?|face) (?:is |are )?(?:swelling|swollen|closing|closing up|tight)",
    # other emergencies
    r"(?:i think )?(?:i'?m|i am|he'?s|she'?s|they'?re) dying", r"head injury", r"hit (?:my|his|her) head",
]
_QUESTION = re.compile(r"^(?:what|what's|whats|which|why|how|where|when|who|whom|whose|define|explain|describe|is|"
                       r"are|was|were|does|do|did|can|could|should|would|will|tell me|information|info|list)(?= |$)")
# Someone in the message: the writer or another person, who may be in danger now.
_PERSON = re.compile(r"\b(?:i|i'm|im|i've|ive|i'd|me|my|myself|mine|we|we're|our|us|he|he's|him|his|she|she's|her|"
                     r"they're|someone|somebody|anyone here|husband|wife|partner|son|daughter|child|kid|baby|boy|girl|"
                     r"mum|mom|mother|dad|father|parent|grandma|grandpa|grandmother|grandfather|brother|sister|friend|"
                     r"neighbou?r|colleague|patient)\b")  # fmt: skip


def _compile(phrases: Sequence[str]) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(phrases) + r")\b")


_ALWAYS_RE = _compile(_ALWAYS)
_INFORMATIONAL_RE = _compile(_UNLESS_INFORMATIONAL)
DEFAULT_TERMS: tuple[str, ...] = tuple(_ALWAYS + _UNLESS_INFORMATIONAL)  # for the docs and the console's hint


@dataclass(frozen=True)
class Urgent:
    phrase: str  # what was found, as it stands in the (normalised) message
    always: bool  # an always-urgent phrase or one of the organisation's own


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold().replace("’", "'").replace("‘", "'")
    return " ".join(re.sub(r"[^\w'?]+|_", " ", text).split())


def _terms(extra: Sequence[str]) -> re.Pattern[str] | None:
    words = [re.escape(normalise(t).replace("?", "")) for t in extra if normalise(t).replace("?", "").strip()]
    return re.compile(r"\b(?:" + "|".join(words) + r")\b") if words else None


def detect(text: str, extra_terms: Sequence[str] = ()) -> Urgent | None:
    """What makes the message urgent, or None. `extra_terms`: the organisation's own phrases (always urgent)."""
    words = normalise(text)
    if not words:
        return None
    plain = words.replace("?", " ")
    extra = _terms(extra_terms)
    for pattern in (_ALWAYS_RE, extra):
        if pattern is not None and (found := pattern.search(plain)) is not None:
            return Urgent(found.group(0), True)
    found = _INFORMATIONAL_RE.search(plain)
    if found is None:
        return None
    asked = bool(_QUESTION.match(words)) or words.rstrip().endswith("?")
    if asked and not _PERSON.search(plain):
        return None  # a question about the condition, naming nobody who has it
    return Urgent(found.group(0), False)
