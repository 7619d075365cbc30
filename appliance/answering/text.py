"""Words and units of text for the answer engine: content terms with a light suffix stemmer (to tell whether a
passage covers the question's words), and the units an extractive answer is made of (sentences, numbered steps,
bullet items), each keeping its markdown marker so numbered steps stay numbered."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from appliance.retrieval.lexical import STOPWORDS

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*", re.UNICODE)
_SUFFIXES = ("ing", "ed", "es", "s")
_STEP = re.compile(r"^\s{0,3}(\d{1,3})[.)]\s+(.*)$")
_BULLET = re.compile(r"^\s{0,3}([-*+•])\s+(.*)$")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
# A sentence ends at . ! or ? followed by space and a capital, digit, quote or bracket (not "e.g. the", "v1.2").
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z0-9\"'(\[“‘])")
_ABBREVIATION = re.compile(r"\b(?:e\.g|i\.e|etc|vs|approx|no|dr|mr|mrs|ms|st|fig|incl)\.$", re.IGNORECASE)

UnitKind = Literal["sentence", "step", "bullet", "table"]
_TABLE_ROW = re.compile(r"^\s{0,3}\|")


def stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def words(text: str) -> list[str]:
    return [m.group(0) for m in _WORD.finditer(text.lower().replace("’", "'"))]


def content_terms(text: str) -> list[str]:
    """Stems of the text's content words, in order, without duplicates."""
    seen: dict[str, None] = {}
    for word in words(text):
        if word.endswith("'s"):
            word = word[:-2]
        if len(word) >= 2 and word not in STOPWORDS:
            seen.setdefault(stem(word), None)
    return list(seen)


def term_set(text: str) -> set[str]:
    return {stem(w[:-2] if w.endswith("'s") else w) for w in words(text)}


@dataclass(frozen=True)
class Unit:
    kind: UnitKind
    text: str  # the unit's words, without its list marker, lines joined by single spaces (a table: its rows)
    marker: str  # "3." for a numbered step, "-" for a bullet, "" for a sentence
    block: int  # units of one paragraph or one list share a block number
    order: int  # position in the text
    section: int = 0  # units under one heading share a section number
    start: int = 0  # the unit's span in the text it was taken from (its marker excluded)
    end: int = 0

    def markdown(self) -> str:
        return f"{self.marker} {self.text}" if self.marker else self.text


class _Joined:
    """Lines joined by single spaces, remembering where each character came from in the original text."""

    def __init__(self) -> None:
        self.text = ""
        self.origin: list[int] = []

    def add(self, offset: int, line: str) -> None:
        if self.text:
            self.text += " "
            self.origin.append(self.origin[-1] + 1)
        self.text += line
        self.origin.extend(range(offset, offset + len(line)))

    def span(self, start: int, end: int) -> tuple[int, int]:
        return self.origin[start], self.origin[end - 1] + 1


def sentence_spans(paragraph: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of a paragraph, surrounding spaces excluded."""
    spans: list[tuple[int, int]] = []
    begin = 0
    for match in _SENTENCE_END.finditer(paragraph):
        candidate = paragraph[begin : match.start()].strip()
        if candidate and not _ABBREVIATION.search(paragraph[begin : match.end()].strip()):
            spans.append((begin, match.start()))
            begin = match.end()
    spans.append((begin, len(paragraph)))
    out = []
    for a, b in spans:
        while a < b and paragraph[a].isspace():
            a += 1
        while b > a and paragraph[b - 1].isspace():
            b -= 1
        if b > a:
            out.append((a, b))
    return out


def split_sentences(paragraph: str) -> list[str]:
    return [paragraph[a:b] for a, b in sentence_spans(paragraph)]


def units(text: str) -> list[Unit]:
    """The units of a markdown text, with their spans in it. Lines of one paragraph are joined first (extracted
    manuals break lines mid-sentence); a list item runs until the next item, a blank line or a heading. Headings
    and code blocks are not units."""
    out: list[Unit] = []
    block = 0
    section = 0
    paragraph: _Joined | None = None
    item: tuple[UnitKind, str, _Joined] | None = None
    table: list[tuple[int, str]] = []  # (offset, line) of the rows of an open table
    in_code = False

    def close_table() -> None:
        nonlocal block
        if table:
            start, end = table[0][0], table[-1][0] + len(table[-1][1])
            out.append(Unit("table", "\n".join(line for _, line in table), "", block, len(out), section, start, end))
            table.clear()
            block += 1

    def close_item() -> None:
        nonlocal item
        if item is not None:
            kind, marker, joined = item
            if joined.text.strip():
                a, b = joined.span(0, len(joined.text))
                out.append(Unit(kind, joined.text, marker, block, len(out), section, a, b))
            item = None

    def flush() -> None:
        nonlocal paragraph, block
        close_table()
        if paragraph is not None:
            for a, b in sentence_spans(paragraph.text):
                start, end = paragraph.span(a, b)
                out.append(Unit("sentence", paragraph.text[a:b], "", block, len(out), section, start, end))
            paragraph = None
            block += 1
        close_item()

    offset = 0
    for raw in text.splitlines(keepends=True):
        here, offset = offset, offset + len(raw)
        raw = raw.rstrip("\r\n")
        line = raw.strip()
        lead = here + len(raw) - len(raw.lstrip())
        if _FENCE.match(raw):
            flush()
            in_code = not in_code
            continue
        if in_code:
            continue
        if _TABLE_ROW.match(raw):  # a table stays one unit, row by row, as written
            if not table:
                flush()
            table.append((lead, line))
            continue
        close_table()
        if not line or _HEADING.match(raw):
            flush()
            if item is None and paragraph is None:
                block += 1
            if line:
                section += 1
            continue
        step, bullet = _STEP.match(raw), _BULLET.match(raw)
        if step or bullet:
            in_list = item is not None
            if paragraph is not None:  # a list straight after a paragraph line starts a new block
                flush()
            else:
                close_item()
            if not in_list and out and out[-1].block == block and out[-1].kind != "sentence":
                block += 1
            found = step or bullet
            assert found is not None
            joined = _Joined()
            body_at = found.start(2)
            joined.add(here + body_at, raw[body_at:].strip())
            item = ("step", f"{found.group(1)}.", joined) if step else ("bullet", "-", joined)
            continue
        if item is not None:
            item[2].add(lead, line)
            continue
        if paragraph is None:
            paragraph = _Joined()
        paragraph.add(lead, line)
    flush()
    return [u for u in out if u.text]
