"""Heading-aware chunking: an article is cut at its markdown headings, then each section's paragraphs are packed
into passages of at most `max_words` words. Every chunk keeps its heading path and its character offsets in the
article's content (so a citation can point at the exact passage), and is indexed with the title and heading path
in front, which is how the dev-set baselines were measured (chunks of <= 200 words, title first).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_MAX_WORDS = 200
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^(```|~~~)")


@dataclass(frozen=True)
class Chunk:
    index: int
    heading_path: tuple[str, ...]
    text: str
    start: int  # content[start:end] == text
    end: int

    def indexed_text(self, title: str) -> str:
        path = " > ".join((title, *self.heading_path))
        return f"{path}\n{self.text}"


@dataclass(frozen=True)
class _Block:
    start: int
    end: int
    words: int
    path: tuple[str, ...]


def _blocks(content: str) -> list[_Block]:
    """Paragraph-sized blocks (blank-line separated, fenced code kept whole), each with its heading path."""
    blocks: list[_Block] = []
    path: list[tuple[int, str]] = []
    pos, block_start, in_fence = 0, None, False

    def close(end: int) -> None:
        nonlocal block_start
        if block_start is not None:
            text = content[block_start:end].rstrip()
            if text.strip():
                blocks.append(_Block(block_start, block_start + len(text), len(text.split()), tuple(t for _, t in path)))
        block_start = None

    for line in content.splitlines(keepends=True):
        stripped = line.strip()
        if _FENCE.match(stripped):
            in_fence = not in_fence
            if block_start is None:
                block_start = pos
        elif not in_fence and (heading := _HEADING.match(stripped)):
            close(pos)
            level = len(heading.group(1))
            path = [(lvl, t) for lvl, t in path if lvl < level] + [(level, heading.group(2).strip())]
        elif not in_fence and not stripped:
            close(pos)
        elif block_start is None:
            block_start = pos + (len(line) - len(line.lstrip()))
        pos += len(line)
    close(pos)
    return blocks


def _split_long(content: str, block: _Block, max_words: int) -> list[_Block]:
    """A block longer than max_words is cut at word boundaries."""
    spans = [m.span() for m in re.finditer(r"\S+", content[block.start : block.end])]
    out = []
    for i in range(0, len(spans), max_words):
        part = spans[i : i + max_words]
        out.append(_Block(block.start + part[0][0], block.start + part[-1][1], len(part), block.path))
    return out


def chunk_article(content: str, max_words: int = DEFAULT_MAX_WORDS) -> list[Chunk]:
    if max_words < 1:
        raise ValueError("max_words must be positive")
    pieces: list[_Block] = []
    for block in _blocks(content):
        pieces.extend(_split_long(content, block, max_words) if block.words > max_words else [block])
    chunks: list[Chunk] = []
    current: list[_Block] = []

    def flush() -> None:
        if current:
            start, end = current[0].start, current[-1].end
            chunks.append(Chunk(len(chunks), current[0].path, content[start:end], start, end))
            current.clear()

    for piece in pieces:
        words = sum(b.words for b in current)
        if current and (piece.path != current[0].path or words + piece.words > max_words):
            flush()
        current.append(piece)
    flush()
    return chunks
