"""Is a generated sentence supported by the passages it cites? The check that stands between a model's draft and a
customer: every sentence is scored against its cited passages and the unsupported ones are removed.

Sentences. `split_sentences` cuts generated markdown into checkable units: the sentences of a paragraph and whole
list items (a step is one unit even when it holds two sentences). Headings and code blocks are not units, so they
never reach the answer. Citation marks stay with their sentence; a mark written just after the full stop
("... ten minutes. [2] Then ...") belongs to the sentence before it.

Support of a sentence s citing the passages C (each passage p split into its sentences):

    lexical(s, p)  = |T(s) ∩ W(p)| / |T(s)|
                     T(s): the content words of s (lowercased, light suffix stemming, stopwords and bare numbers
                     left out; numbers are judged by the rule below), W(p): the stemmed words of p
    semantic(s, p) = max over the sentences u of p of cos(e(s), e(u)), clipped to [0, 1]   (e: the embedder)
    support(s, p)  = LEXICAL_WEIGHT * lexical + SEMANTIC_WEIGHT * semantic   with an embedder
                   = lexical                                                 without one
    support(s)     = max over p in C of support(s, p)

and these make a sentence unsupported (support 0) whatever its words:
  - it cites no passage, or cites a number that is not one of the passages given;
  - it states a number (digits, an amount, a phone number, a time, a duration such as "five days") that none of
    its cited passages states, or a duration in another unit ("10 hours" where the passage says "10 minutes"):
    a wrong number is the worst error in this domain;
  - it has no content words (nothing to verify; such a line carries no answer either).

A sentence is kept when support >= min_support. Lexical overlap catches invented facts that embeddings rate close
to their source ("call 555-0199" vs "call 555-0101" differ in one token); the embedding credits a faithful
paraphrase that uses other words. Neither catches a negation that reuses the passage's words; that is why the
answer stays cited and the extractive path is the default.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from appliance.answering.text import UnitKind, content_terms, term_set, units
from appliance.answering.types import SentenceCheck, Source
from appliance.inference.base import Embedder

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# Equal weights: each signal alone misses something the other sees (see the module docstring).
LEXICAL_WEIGHT = 0.5
SEMANTIC_WEIGHT = 0.5
# Keep a sentence at half support or more. Measured with the shipped MiniLM embedder on hand-written sentences
# against help-centre passages: a sentence copied from the passage scores 0.85-0.97, a faithful paraphrase
# 0.56-0.84, a sentence on the passage's topic that the passage does not say 0.27-0.34, an unrelated one 0.04.
DEFAULT_MIN_SUPPORT = 0.5

# A citation mark: [1], [12], [1, 2] or [1,2]; several may follow each other: [2][3].
MARK = re.compile(r"\[\s*(\d{1,3}(?:\s*,\s*\d{1,3})*)\s*\]")
_MARKS = r"(?:\s*\[\s*\d{1,3}(?:\s*,\s*\d{1,3})*\s*\])+"
_LEADING_MARKS = re.compile(rf"^{_MARKS}\s*")
# Marks straight after a full stop, then more text: the sentence ends after the marks. text.units does not split
# ".[1] Then" (no space after the stop), so that case is split here.
_STOP_THEN_MARKS = re.compile(rf"(?<=[.!?]){_MARKS}(?=\s+\S)")
_LIST_MARKER = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")
_EMPHASIS = re.compile(r"[*`]+")

# Numbers. An atom is digits with decimal, thousands or time separators (3.5, 1,250, 7:30); atoms joined by
# dashes, slashes, spaces or brackets make one token (555-0101, (555) 123 4567, 9-5, 24/7).
_ATOM = r"\d+(?:[.,:]\d+)*"
_NUMBER = re.compile(rf"\(?{_ATOM}(?:(?:\)?[ \-–/]\(?|\)){_ATOM})*")
_ATOM_RE = re.compile(_ATOM)
_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100,
}  # fmt: skip
_NUMBER_WORD = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")(?:-(" + "|".join(_NUMBER_WORDS) + r"))?\b", re.I)
# A spelled-out number counts as a claim in a sentence only before a unit ("five days"): "choose one of the
# options" states no quantity. In a passage every spelled-out number counts, which only ever helps a sentence.
_UNIT = re.compile(
    r"\s+(?:(?:full|whole|working|business|calendar|more|extra|further|additional|consecutive)\s+)?"
    r"(?:second|minute|hour|day|night|week|fortnight|month|year|time|percent|per\s*cent|%|dollar|euro|pound|"
    r"cent|pence|penny|digit|character|attempt|try|tries|visit|appointment|session|payment|instalment|"
    r"installment|page|item|step|letter)",
    re.I,
)

# A duration is a number and its time unit: "10 minutes" must not pass because the passage says "10 hours".
_TIME_UNITS = {"sec": "second", "min": "minute", "hr": "hour"}
_DURATION = re.compile(
    rf"(?<![\d.,:])({_ATOM}|" + "|".join(_NUMBER_WORDS) + r")(?:-(" + "|".join(_NUMBER_WORDS) + r"))?"
    r"(?:\s*-\s*|\s+)(?:(?:working|business|calendar|full|whole|clear)\s+)?"
    r"(second|sec|minute|min|hour|hr|day|week|month|year)s?\b",
    re.I,
)


@dataclass(frozen=True)
class Piece:
    """A unit of generated markdown: its text (list marker and citation marks included) and its layout."""

    text: str
    kind: UnitKind
    block: int  # pieces of one paragraph or one list share a block


def pieces(markdown: str) -> list[Piece]:
    """The checkable units of generated markdown, in order (see the module docstring)."""
    out: list[Piece] = []
    for unit in units(markdown):
        parts = [unit.text] if unit.kind != "sentence" else _split_after_marks(unit.text)
        for part in parts:
            lead = _LEADING_MARKS.match(part)
            if lead and out and out[-1].block == unit.block and out[-1].kind == "sentence" and unit.kind == "sentence":
                # "... ten minutes. [2] Then ...": the marks end the sentence before.
                out[-1] = Piece(out[-1].text + " " + lead.group(0).strip(), "sentence", unit.block)
                part = part[lead.end() :]
            if not _has_words(part):
                continue
            text = f"{unit.marker} {part}" if unit.marker else part
            out.append(Piece(text, unit.kind, unit.block))
    return out


def _split_after_marks(sentence: str) -> list[str]:
    out, begin = [], 0
    for match in _STOP_THEN_MARKS.finditer(sentence):
        out.append(sentence[begin : match.end()].strip())
        begin = match.end()
    out.append(sentence[begin:].strip())
    return [s for s in out if s]


def _has_words(text: str) -> bool:
    return any(ch.isalnum() for ch in MARK.sub(" ", text))


def split_sentences(text: str) -> list[str]:
    """Generated markdown -> its sentences and list items, each with its [n] marks (and its list marker)."""
    return [p.text for p in pieces(text)]


def cited_numbers(sentence: str) -> tuple[int, ...]:
    """The source numbers a sentence cites, in order, without repeats: "[1]", "[2][3]", "[1, 2]"."""
    seen: dict[int, None] = {}
    for match in MARK.finditer(sentence):
        for number in match.group(1).split(","):
            seen.setdefault(int(number), None)
    return tuple(seen)


def claim_text(sentence: str) -> str:
    """The sentence as a claim: no list marker, no citation marks, no emphasis markers."""
    text = _LIST_MARKER.sub("", sentence, count=1)
    text = MARK.sub(" ", text)
    text = _EMPHASIS.sub("", text)
    return re.sub(r"\s+", " ", text).strip()


# -- numbers -----------------------------------------------------------------------------------------------------


def _canonical_atom(atom: str) -> str:
    """One way to write a number: 1,250 -> 1250, 3,5 -> 3.5, 10.00 -> 10, 1.50 -> 1.5, 9:00 -> 9."""
    atom = re.sub(r",(?=\d{3}(?!\d))", "", atom)
    atom = atom.replace(",", ".")
    if re.fullmatch(r"\d+:00", atom):
        return str(int(atom[:-3]))
    if re.fullmatch(r"\d+\.\d+", atom):
        atom = atom.rstrip("0").rstrip(".")
    return atom


def _tokens(text: str) -> list[tuple[str, list[str]]]:
    """(all the token's digits, its atoms canonical) for each number written in digits."""
    found = []
    for match in _NUMBER.finditer(text):
        token = match.group(0)
        found.append(("".join(ch for ch in token if ch.isdigit()), [_canonical_atom(a) for a in
                                                                     _ATOM_RE.findall(token)]))  # fmt: skip
    return found


def _word_value(match: re.Match[str]) -> str:
    first, second = match.group(1).lower(), match.group(2)
    value = _NUMBER_WORDS[first] + (_NUMBER_WORDS[second.lower()] if second else 0)
    return str(value)


def durations(text: str) -> set[tuple[str, str]]:
    """(value, time unit) for each duration: "10 minutes", "ten-minute", "3 working days", "24 hrs"."""
    out = set()
    for match in _DURATION.finditer(text):
        value, second, unit = match.group(1).lower(), match.group(2), match.group(3).lower()
        if value in _NUMBER_WORDS:
            value = str(_NUMBER_WORDS[value] + (_NUMBER_WORDS[second.lower()] if second else 0))
        else:
            value = _canonical_atom(value)
        out.add((value, _TIME_UNITS.get(unit, unit)))
    return out


def stated_numbers(sentence: str) -> list[tuple[str, list[str]]]:
    """The numbers a sentence states, as (digits, canonical atoms): digits always, spelled-out ones before a unit."""
    found = _tokens(sentence)
    for match in _NUMBER_WORD.finditer(sentence):
        if _UNIT.match(sentence, match.end()):
            value = _word_value(match)
            found.append((value, [value]))
    return found


def available_numbers(passage: str) -> set[str]:
    """Every form in which the passage states a number: each token's atoms, its digits together, spelled-out
    numbers as digits."""
    out: set[str] = set()
    for digits, atoms in _tokens(passage):
        out.add(digits)
        out.update(atoms)
    out.update(_word_value(m) for m in _NUMBER_WORD.finditer(passage))
    return out


def numbers_supported(sentence: str, passages: Sequence[str]) -> bool:
    """True when every number the sentence states occurs in one of the passages (a phone number written with
    other separators, an amount with or without thousands separators or zero cents, still matches)."""
    stated = stated_numbers(sentence)
    if not stated:
        return True
    available: set[str] = set()
    for passage in passages:
        available |= available_numbers(passage)
    for digits, atoms in stated:
        whole = len(atoms) > 1 and digits in available
        if not whole and not all(atom in available for atom in atoms):
            return False
    stated_durations = durations(sentence)
    if stated_durations:
        known: set[tuple[str, str]] = set()
        for passage in passages:
            known |= durations(passage)
        return stated_durations <= known
    return True


# -- the check ---------------------------------------------------------------------------------------------------


def claim_terms(claim: str) -> list[str]:
    """The claim's content words, stemmed; bare numbers left to the number rule."""
    return [t for t in content_terms(claim) if not t.isdigit()]


def lexical_overlap(terms: Sequence[str], passage: str) -> float:
    """Share of the claim's content words found in the passage (0 when the claim has none)."""
    if not terms:
        return 0.0
    present = term_set(_EMPHASIS.sub("", passage))
    return sum(t in present for t in terms) / len(terms)


def passage_sentences(passage: str) -> list[str]:
    found = [claim_text(u.text) for u in units(passage)]
    return [s for s in found if s] or [claim_text(passage)]


def check(
    sentences: Sequence[str], sources: Sequence[Source], embedder: Embedder | None, min_support: float
) -> list[SentenceCheck]:
    """Score each sentence against the sources it cites (formula in the module docstring); one embedder call."""
    by_number = {s.number: s for s in sources}
    claims = [claim_text(s) for s in sentences]
    cited = [cited_numbers(s) for s in sentences]
    terms = [claim_terms(c) for c in claims]
    checkable = [
        bool(t) and bool(n) and all(x in by_number for x in n) and numbers_supported(c, [by_number[x].text for x in n])
        for c, t, n in zip(claims, terms, cited, strict=True)
    ]  # fmt: skip
    similarity = _similarities(claims, cited, checkable, by_number, embedder) if embedder is not None else None
    out = []
    for index, sentence in enumerate(sentences):
        support = 0.0
        if checkable[index]:
            for number in cited[index]:
                score = lexical_overlap(terms[index], by_number[number].text)
                if similarity is not None:
                    score = LEXICAL_WEIGHT * score + SEMANTIC_WEIGHT * similarity[index].get(number, 0.0)
                support = max(support, score)
        support = round(min(1.0, max(0.0, support)), 4)
        out.append(SentenceCheck(sentence, cited[index], support, checkable[index] and support >= min_support))
    return out


def _similarities(
    claims: Sequence[str], cited: Sequence[tuple[int, ...]], checkable: Sequence[bool], by_number: dict[int, Source],
    embedder: Embedder,
) -> list[dict[int, float]]:
    """For each checkable claim, {source number: cosine to the source's best-matching sentence, clipped to [0, 1]}.
    Claims already unsupported by the rules are not embedded."""
    checked = [i for i, ok in enumerate(checkable) if ok]
    wanted = sorted({n for i in checked for n in cited[i]})
    rows: dict[int, list[str]] = {n: passage_sentences(by_number[n].text) for n in wanted}
    texts = [claims[i] for i in checked] + [s for n in wanted for s in rows[n]]
    out: list[dict[int, float]] = [{} for _ in claims]
    if not checked:
        return out
    vectors: npt.NDArray[np.float32] = embedder.embed(texts)
    claim_vectors, passage_vectors = vectors[: len(checked)], vectors[len(checked) :]
    offsets, at = {}, 0
    for n in wanted:
        offsets[n] = (at, at + len(rows[n]))
        at += len(rows[n])
    for row, i in enumerate(checked):
        for n in cited[i]:
            a, b = offsets[n]
            best = float((passage_vectors[a:b] @ claim_vectors[row]).max())
            out[i][n] = min(1.0, max(0.0, best))
    return out

