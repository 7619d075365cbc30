"""Deterministic fakes for fast unit tests (`llm_engine = "fake"`). They keep the engines' contracts (streaming,
token counts, max_tokens, stop sequences, cancel, timeout) without loading a model.

`FakeGenerator` answers "Echo: " followed by the last user message, one word per delta (" word" after the
first). A token is a whitespace-separated word: `count_tokens`, prompt_tokens and completion_tokens all count
words, and the prompt is every message's words. It applies a simple context rule (shrink max_tokens to at most
64, then count the excess prompt words as truncated) and never touches the network or a model.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from appliance.errors import InvalidValue
from appliance.inference.base import GenerationRequest, GenerationResult, StreamingGeneration

ECHO_PREFIX = "Echo:"
_MIN_COMPLETION = 64


class FakeGenerator:
    """The fake `Generator`. `delay_s` sleeps before each word, for tests of timeouts and disconnects."""

    def __init__(self, name: str = "fake", *, context_window: int = 4096, delay_s: float = 0.0) -> None:
        self.name = name
        self.context_window = context_window
        self.delay_s = delay_s

    def generate(self, request: GenerationRequest) -> FakeGeneration:
        if request.max_tokens < 1:
            raise InvalidValue("max_tokens must be at least 1")
        return FakeGeneration(self, request)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    @staticmethod
    def reply_words(request: GenerationRequest) -> list[str]:
        last_user = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
        return [ECHO_PREFIX, *last_user.split()]


class FakeGeneration(StreamingGeneration):
    def __init__(self, owner: FakeGenerator, request: GenerationRequest) -> None:
        super().__init__(GenerationResult(model=owner.name))
        self._owner = owner
        self._request = request
        timeout = request.timeout_s if request.timeout_s is not None else 120.0
        self._deadline = self.started + timeout
        prompt = sum(owner.count_tokens(m.content) for m in request.messages)
        window = owner.context_window
        self._max_tokens = request.max_tokens
        truncated = 0
        if prompt + self._max_tokens > window:
            self._max_tokens = max(min(self._max_tokens, _MIN_COMPLETION), window - prompt)
            truncated = max(0, prompt + self._max_tokens - window)
        self.result.prompt_tokens = prompt - truncated
        self.result.truncated_prompt_tokens = truncated

    def _run(self) -> Iterator[str]:
        result, stops = self.result, [s for s in self._request.stop if s]
        result.timings["queue_s"] = 0.0
        try:
            for word in FakeGenerator.reply_words(self._request):
                if self._owner.delay_s:
                    time.sleep(self._owner.delay_s)
                if self._cancel.is_set():
                    self._finish("cancelled")
                    return
                if time.monotonic() >= self._deadline:
                    self._finish("timeout")
                    return
                result.timings.setdefault("first_token_s", time.monotonic() - self.started)
                delta = word if not result.text else " " + word
                result.completion_tokens += 1
                hit = min((i for i in ((result.text + delta).find(s) for s in stops) if i >= 0), default=-1)
                if hit >= 0:
                    # Stop sequences are matched on the whole text and left out of it, as the real engines do.
                    cut = (result.text + delta)[:hit]
                    if len(cut) > len(result.text):
                        tail, result.text = cut[len(result.text) :], cut
                        yield tail
                    self._finish("stop")
                    return
                result.text += delta
                yield delta
                if result.completion_tokens >= self._max_tokens:
                    self._finish("length")
                    return
            self._finish("stop")
        finally:
            if not result.finish_reason:
                self._finish("cancelled")
