"""The interfaces every model engine implements. Real engines import their heavy library inside the function that
needs it, so importing this module (and the web app) stays light."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


@runtime_checkable
class Embedder(Protocol):
    """Sentence embeddings: float32, shape (len(texts), dim), each row L2-normalised."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class GenerationRequest:
    messages: Sequence[ChatMessage]
    max_tokens: int = 256
    stop: Sequence[str] = ()
    temperature: float = 0.0
    seed: int = 0
    timeout_s: float | None = None  # whole request, queueing included; None: the engine's setting


@dataclass
class GenerationResult:
    """Filled in while a stream runs; complete once the stream's iterator is exhausted."""

    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0  # prompt tokens served from the reused prefix (KV cache)
    finish_reason: Literal["stop", "length", "cancelled", "timeout", ""] = ""
    truncated_prompt_tokens: int = 0  # dropped by the context-window rule
    model: str = ""
    timings: dict[str, float] = field(default_factory=dict)  # queue_s, first_token_s, total_s


class Generation(Protocol):
    """A running completion: iterate for text deltas; `result` holds token counts when iteration ends."""

    result: GenerationResult

    def __iter__(self) -> Iterator[str]: ...

    def cancel(self) -> None:
        """Stop generating and free the model slot (a client that disconnected)."""


FinishReason = Literal["stop", "length", "cancelled", "timeout"]


class StreamingGeneration:
    """What every engine's Generation shares: the stream starts on first iteration and stays the same iterator, a
    cancel flag any thread may set, and the finish reason with the total time. Engines implement `_run()`."""

    def __init__(self, result: GenerationResult, started: float | None = None) -> None:
        self.result = result
        self.started = time.monotonic() if started is None else started
        self._cancel = threading.Event()
        self._stream: Iterator[str] | None = None

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        self._cancel.set()

    def __iter__(self) -> Iterator[str]:
        if self._stream is None:
            self._stream = self._run()
        return self._stream

    def _finish(self, reason: FinishReason) -> None:
        self.result.finish_reason = reason
        self.result.timings["total_s"] = time.monotonic() - self.started

    def _run(self) -> Iterator[str]:
        raise NotImplementedError


@runtime_checkable
class Generator(Protocol):
    name: str
    context_window: int

    def generate(self, request: GenerationRequest) -> Generation: ...

    def count_tokens(self, text: str) -> int: ...


@dataclass(frozen=True)
class Score:
    label: Literal["negative", "neutral", "positive"] | str
    score: float  # 0..100


@runtime_checkable
class TextScorer(Protocol):
    """A text classifier returning (label, 0-100 score) per text: sentiment, and later other classifiers."""

    name: str

    @property
    def labels(self) -> Sequence[str]: ...

    def score(self, texts: Sequence[str]) -> list[Score]: ...


# The sentiment model is the first TextScorer; the name the rest of the product uses for it.
SentimentScorer = TextScorer
