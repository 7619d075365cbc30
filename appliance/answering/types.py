"""What an answer is made of: the passages it cites, its confidence and the record of how it was produced."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Mode = Literal["extractive", "generative", "echo", "template"]  # echo: only the hub benchmark's responder;
#                                                               template: the engine's own words (small talk)
# smalltalk: a greeting, thanks or goodbye answered with a fixed reply; urgent: the emergency guidance
Outcome = Literal["answered", "refused", "blocked", "smalltalk", "urgent"]


@dataclass(frozen=True)
class Source:
    """One cited passage: [number] → the article version, its help-centre page and the passage's offsets."""

    number: int
    article_id: int
    version: int
    title: str
    url: str
    chunk_id: int
    start: int  # offsets of the passage in the article version's content
    end: int
    text: str  # the passage as retrieved (what the answer's words may come from)

    def public(self) -> dict[str, Any]:
        return {
            "number": self.number, "article_id": self.article_id, "version": self.version, "title": self.title,
            "url": self.url, "chunk_id": self.chunk_id, "start": self.start, "end": self.end,
        }  # fmt: skip


@dataclass(frozen=True)
class Suggestion:
    """An article a refusal offers to read (found by the search, below the bar for an answer)."""

    article_id: int
    version: int
    title: str
    url: str

    def public(self) -> dict[str, Any]:
        return {"article_id": self.article_id, "version": self.version, "title": self.title, "url": self.url}


@dataclass(frozen=True)
class SentenceCheck:
    """A generated sentence and how well the passages it cites support it."""

    sentence: str
    cited: tuple[int, ...]  # source numbers
    support: float  # 0..1
    kept: bool


@dataclass
class Answer:
    outcome: Outcome
    text: str  # markdown with [n] citation marks; the refusal text when refused or blocked
    confidence: int  # 0..100: the calibrated probability that the answer is right
    sources: list[Source]
    mode: Mode
    question: str
    query: str  # the standalone query the retrieval ran (a follow-up resolved with earlier turns)
    threshold: int
    reason: str = ""  # why it refused ("low_confidence", "no_match", "prompt_attack", …); the small-talk kind; "urgent"
    features: dict[str, float] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    checks: list[SentenceCheck] = field(default_factory=list)  # generative answers only
    suggestions: list[Suggestion] = field(default_factory=list)  # refusals only: articles that may help
    cached: bool = False
    ms: float = 0.0

    @property
    def answered(self) -> bool:
        return self.outcome == "answered"

    def public(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome, "text": self.text, "confidence": self.confidence, "mode": self.mode,
            "sources": [s.public() for s in self.sources], "query": self.query, "threshold": self.threshold,
            "reason": self.reason, "cached": self.cached, "suggestions": [s.public() for s in self.suggestions],
        }  # fmt: skip
