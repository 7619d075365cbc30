"""The default answer: the units (sentences, numbered steps, bullet items) of the best article that answer the
question, in the article's own words, cited.

Units are read from the whole published version of the article, so a list that the indexer put in the passage
after its introduction still comes with it. A unit inside one of the article's retrieved passages scores by the
weighted share of the question's terms it contains plus a quarter of its passage's retrieval score; the best unit
is taken with its context: a step or bullet brings its whole list (numbered steps stay numbered) and the sentence
that introduces it; a sentence brings the sentences after it in its paragraph up to MAX_SENTENCES, and the list
the paragraph introduces. A second group from another retrieved passage is added when it covers question terms
the first does not. Each group is cited as the span of the article version it was taken from. Apart from the
citation marks ([1], [2]) and the list markers, every word of the answer is a word of a cited span: the engine adds
no words of its own. Passages held for review as suspected injections are never quoted.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.answering.features import QuestionTerms
from appliance.answering.text import Unit, term_set, units

PASSAGE_WEIGHT = 0.25  # share of the passage's retrieval score in a unit's score
PASSAGES = 3  # the best retrieved passages of the article that an answer may start from
MAX_SENTENCES = 3  # sentences of one paragraph in a group
MAX_LIST_ITEMS = 12
MAX_WORDS = 160  # a group stops growing past this many words
SECOND_GROUP_MIN = 0.5  # a second group must score at least this share of the first group's best unit


@dataclass(frozen=True)
class Evidence:
    """A retrieved passage of the article: its span in the article version and its retrieval score."""

    chunk_id: int
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class Group:
    units: tuple[Unit, ...]
    chunk_id: int  # the retrieved passage the group grew from
    start: int  # the group's span in the article version's content
    end: int


def _words(group: list[Unit]) -> int:
    return sum(len(u.text.split()) for u in group)


def _grow(best: Unit, all_units: list[Unit]) -> list[Unit]:
    block = [u for u in all_units if u.block == best.block]
    if best.kind != "sentence":
        chosen = block[:MAX_LIST_ITEMS]
        before = [u for u in all_units if u.order < block[0].order]
        # the sentence that introduces the list or table: the one straight before it, under the same heading
        if before and before[-1].kind == "sentence" and before[-1].section == best.section:
            chosen = [before[-1], *chosen]
        return chosen
    chosen = [best]
    for unit in block:
        if unit.order <= best.order:
            continue
        if len(chosen) >= MAX_SENTENCES or _words(chosen) >= MAX_WORDS:
            break
        chosen.append(unit)
    # The list a paragraph introduces comes with it: after a closing colon, or straight after the paragraph's last
    # sentence under the same heading ("You can reset it yourself in a few minutes." followed by the steps).
    following = [u for u in all_units if u.order > chosen[-1].order]
    ends_block = not following or following[0].block != chosen[-1].block
    if following and following[0].kind != "sentence" and following[0].section == chosen[-1].section and (
        chosen[-1].text.endswith(":") or ends_block
    ):
        chosen += [u for u in following if u.block == following[0].block][:MAX_LIST_ITEMS]
    return chosen


def select(
    q: QuestionTerms, content: str, evidence: list[Evidence], held: list[tuple[int, int]] | None = None
) -> list[Group]:
    """The groups of units that answer the question from this article version, in the order they are cited.
    `held`: spans of the content held out of the index (suspected injections awaiting review): never quoted."""
    found = [u for u in units(content) if not any(u.start < b and u.end > a for a, b in held or ())]
    best_passages = sorted(evidence, key=lambda e: -e.score)[:PASSAGES]
    scored: list[tuple[float, int, Unit, Evidence]] = []
    for rank, ev in enumerate(best_passages):
        for unit in found:
            if unit.start < ev.end and unit.end > ev.start:
                score = q.covered(term_set(unit.text)) + PASSAGE_WEIGHT * ev.score
                scored.append((score, -rank * 100_000 - unit.order, unit, ev))
    if not scored:
        return []
    scored.sort(key=lambda s: (s[0], s[1]), reverse=True)
    best_score, _, best, ev = scored[0]
    first = _grow(best, found)
    groups = [Group(tuple(first), ev.chunk_id, first[0].start, max(u.end for u in first))]
    taken = {u.order for u in first}
    covered = set().union(*(term_set(u.text) for u in first))
    for score, _, unit, other in scored[1:]:
        if score < SECOND_GROUP_MIN * best_score:
            break
        if unit.order in taken:
            continue
        grown = [u for u in _grow(unit, found) if u.order not in taken]
        if grown and q.covered(term_set(unit.text) - covered) > 0:
            groups.append(Group(tuple(grown), other.chunk_id, grown[0].start, max(u.end for u in grown)))
            break
    return sorted(groups, key=lambda g: g.start)  # in the article's order


def render(groups: list[Group]) -> str:
    """Markdown: each group a paragraph or a list, followed by its citation mark ([n], n = its place)."""
    parts = []
    for number, group in enumerate(groups, start=1):
        lines: list[str] = []
        sentences: list[str] = []
        previous = ""
        for unit in group.units:
            if unit.kind == "sentence":
                sentences.append(unit.text)
                previous = unit.kind
                continue
            if sentences:
                lines.append(" ".join(sentences))
                sentences = []
            if lines and (unit.kind == "table" or previous == "sentence" or previous == "table"):
                lines.append("")  # a list or a table after a paragraph needs a blank line in markdown
            lines.append(unit.markdown())
            previous = unit.kind
        if sentences:
            if lines:
                lines.append("")
            lines.append(" ".join(sentences))
        if group.units[-1].kind == "table" and not sentences:
            lines += ["", f"[{number}]"]  # a mark on a table row would become a cell
        else:
            lines[-1] = f"{lines[-1]} [{number}]"
        parts.append("\n".join(lines))
    return "\n\n".join(parts)
